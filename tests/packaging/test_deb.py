"""The Debian package, for real (issue 8): built by packaging/build-deb, checked by lintian, installed with apt-get,
provisioned with otp-admin, served the way the systemd unit runs it (its ExecStart as its User, systemd itself not
being needed), answered by radclient and by a PAM login through pam_python, then removed and purged without a
trace. Runs as root; it purges any earlier installation of the package first.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import re
import shlex
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PKG = "otp-server"
UNIT_PATH = Path("/lib/systemd/system/otp-radiusd.service")
WEB_UNIT_PATH = Path("/lib/systemd/system/otp-web.service")
WEB_KEY = "pkgtest-api-key-0123456789"
CONFIG = Path("/etc/otp/otp.toml")
KEY = Path("/etc/otp/otp.key")
STORE = Path("/var/lib/otp/otp.sqlite")
PAM_SERVICE = Path("/etc/pam.d/otp-pkgtest")
SECRET = "testing123"
ALICE = ("alice", "alice-pw", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
BOB = ("bob", "bob-pw", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
CAROL = ("carol", "carol-pw", "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U")  # otp-web's user
APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
# What a system unit starts with (systemd's default environment).
UNIT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

# The file-system snapshot: everything a package could leave behind, minus the package manager's own records and
# the backups shadow-utils writes when a user is added or removed.
SNAPSHOT_ROOTS = ("/etc", "/var/lib", "/usr", "/opt", "/srv", "/lib")
SNAPSHOT_SKIP = ("/var/lib/dpkg", "/var/lib/apt", "/var/lib/ucf", "/var/lib/man-db")
SHADOW_BACKUPS = {"/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-", "/etc/subuid-", "/etc/subgid-"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

Run = Callable[..., subprocess.CompletedProcess[str]]


def package_status(run: Run) -> str:
    return run("dpkg-query", "-W", "-f=${Status}", PKG, check=False).stdout.strip()


def purge(run: Run) -> None:
    if package_status(run) not in ("", "unknown ok not-installed"):
        run("apt-get", "purge", "-y", PKG, env=APT_ENV)


def snapshot() -> set[str]:
    paths: set[str] = set()
    for top in SNAPSHOT_ROOTS:
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if os.path.join(folder, d) not in SNAPSHOT_SKIP]
            paths.update(os.path.join(folder, name) for name in dirs + files)
    return paths


def owner_mode(path: Path) -> tuple[str, str, int]:
    st = path.stat()
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, stat.S_IMODE(st.st_mode)


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_udp_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def totp(run: Run, secret: str) -> str:
    return run("oathtool", "--totp", "-b", secret).stdout.strip()


def radclient(run: Run, port: int, kind: str, attributes: str) -> subprocess.CompletedProcess[str]:
    return run("radclient", "-x", "-r", "1", "-t", "2", f"127.0.0.1:{port}", kind, SECRET,
               input=attributes + "\n", check=False, timeout=30)


def unit_command(unit: dict[str, dict[str, list[str]]]) -> tuple[list[str], dict[str, object]]:
    """The unit's ExecStart as its User/Group, with its UMask, NoNewPrivileges and empty capability sets, in
    systemd's working directory and environment: argv and Popen keywords."""
    service = {key: values[-1] for key, values in unit["Service"].items()}
    exec_start = shlex.split(service["ExecStart"])
    assert exec_start[0].startswith("/"), "ExecStart must be an absolute path without a systemd prefix"
    user = service["User"]
    group = service.get("Group", user)
    wrapper = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups", "--inh-caps=-all"]
    if service.get("NoNewPrivileges") == "yes":
        wrapper.append("--no-new-privs")
    if service.get("CapabilityBoundingSet") == "":
        wrapper.append("--bounding-set=-all")
    umask = int(service.get("UMask", "0022"), 8)
    return [*wrapper, "--", *exec_start], {"cwd": service.get("WorkingDirectory", "/"), "env": UNIT_ENV,
                                           "umask": umask}


@pytest.fixture
def clean_system(root: None, run: Run) -> Iterator[None]:
    purge(run)
    PAM_SERVICE.unlink(missing_ok=True)
    yield
    PAM_SERVICE.unlink(missing_ok=True)
    purge(run)


def test_lintian_finds_no_error(deb: Path, require_tool, run: Run):
    require_tool("lintian")
    p = run("lintian", "--pedantic", "--display-info", deb, check=False)
    tags = [line for line in p.stdout.splitlines() if line[:2] in ("E:", "W:", "I:", "P:", "X:")]
    print("\n".join(tags))  # the warnings, for the record (-rP shows them)
    assert not [t for t in tags if t.startswith("E:")], p.stdout
    assert p.returncode == 0, p.stdout + p.stderr


def serve_web(web_unit: dict[str, dict[str, list[str]]], run: Run, tmp_path: Path) -> None:
    """otp-web as its unit runs it, from the package's own environment: the API answers, from the shared store."""
    import tomllib
    import urllib.request

    host, port = tomllib.loads(CONFIG.read_text())["web"]["listen"].split(":")
    argv, popen_kw = unit_command(web_unit)
    log_path = tmp_path / "otp-web.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **popen_kw)
    try:
        deadline = time.monotonic() + 30
        while "ready: listening" not in log_path.read_text():
            assert server.poll() is None, f"otp-web exited {server.returncode}:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"otp-web never got ready:\n{log_path.read_text()}"
            time.sleep(0.2)
        name, password, secret = CAROL
        body = json.dumps({"user": name, "pass": password + totp(run, secret)}).encode()
        request = urllib.request.Request(f"http://{host}:{port}/api/v1/validate/check", data=body, headers={
            "Authorization": f"Bearer {WEB_KEY}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.loads(answer.read())["result"] == "accept"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0, log_path.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_install_provision_serve_remove_purge(deb: Path, unit, web_unit, clean_system, require_tool, run: Run,
                                              tmp_path: Path):
    for tool in ("apt-get", "setpriv", "radclient", "oathtool", "pamtester", "systemd-analyze"):
        require_tool(tool)
    before = snapshot()

    # -- install ------------------------------------------------------------------------------------------------------
    run("apt-get", "install", "-y", deb, env=APT_ENV)
    assert package_status(run) == "install ok installed"
    otp = pwd.getpwnam("otp")
    assert otp.pw_uid < 1000 and otp.pw_shell.endswith("nologin") and otp.pw_dir == "/var/lib/otp"
    assert grp.getgrgid(otp.pw_gid).gr_name == "otp"
    assert owner_mode(Path("/etc/otp")) == ("root", "otp", 0o750)
    assert owner_mode(CONFIG) == ("root", "otp", 0o640)
    assert owner_mode(KEY) == ("otp", "otp", 0o600)  # made by `otp-admin init` in postinst
    assert owner_mode(STORE.parent) == ("otp", "otp", 0o750)
    assert owner_mode(STORE) == ("otp", "otp", 0o600)
    assert UNIT_PATH.read_text() == (Path(__file__).parents[2] / "packaging" / "otp-radiusd.service").read_text()
    assert os.readlink("/etc/systemd/system/multi-user.target.wants/otp-radiusd.service") == str(UNIT_PATH)
    run("systemd-analyze", "verify", UNIT_PATH)
    run("systemd-analyze", "verify", WEB_UNIT_PATH)
    assert not os.path.lexists("/etc/systemd/system/multi-user.target.wants/otp-web.service")  # the admin enables it
    for command in ("otp-admin", "otp-radiusd", "otp-web"):
        assert Path(f"/usr/bin/{command}").is_file()
        assert "usage:" in run(command, "--help").stdout
    assert Path("/usr/share/man/man8/otp-admin.8.gz").is_file()
    # the PAM examples load the module from where the package puts it
    examples = sorted(Path("/usr/share/doc/otp-server/examples/pam.d").iterdir())
    modules = {line.split("pam_python.so", 1)[1].split()[0] for example in examples
               for line in example.read_text().splitlines() if line.startswith("auth") and "pam_python.so" in line}
    assert modules and all(Path(m).is_file() for m in modules), modules
    key_before = KEY.read_bytes()

    # -- provision, as an admin would (root, default config) ----------------------------------------------------------
    for name, password, secret in (ALICE, BOB, CAROL):
        run("otp-admin", "user", "add", name, "--password-stdin", input=password + "\n")
        run("otp-admin", "token", "add", name, "--type", "totp", "--secret", secret, "--qr", "none")
    port, acct_port = free_udp_ports(2)
    with CONFIG.open("w") as fh:  # rewritten in place: owner and mode stay the package's
        fh.write(f'[store]\npath = "{STORE}"\nkey_file = "{KEY}"\n\n'
                 f'[radius]\nlisten = ["127.0.0.1:{port}"]\naccounting_listen = ["127.0.0.1:{acct_port}"]\n\n'
                 f'[[radius.clients]]\nname = "pkgtest"\naddress = "127.0.0.1"\nsecret = "{SECRET}"\n\n'
                 f'[web]\nlisten = "127.0.0.1:{free_tcp_port()}"\n\n'
                 f'[[web.apps]]\nname = "pkgtest"\nkey = "{WEB_KEY}"\nfirst_factor = "store"\n')
    serve_web(web_unit, run, tmp_path)

    # -- serve, the way the unit does ---------------------------------------------------------------------------------
    argv, popen_kw = unit_command(unit)
    log_path = tmp_path / "otp-radiusd.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  **popen_kw)
    try:
        status = "Message-Authenticator = 0x00"
        deadline = time.monotonic() + 30
        while "Received Access-Accept" not in radclient(run, port, "status", status).stdout:
            assert server.poll() is None, f"otp-radiusd exited {server.returncode}:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"otp-radiusd never answered:\n{log_path.read_text()}"
            time.sleep(0.2)
        assert pwd.getpwuid(os.stat(f"/proc/{server.pid}").st_uid).pw_name == "otp"

        # a PAM login through pam_python, with the line `otp-admin pam-config` prints, while the server holds the
        # store open: root writes to it and the server must still be able to afterwards
        line = run("otp-admin", "pam-config", "--mode", "local").stdout.strip()
        PAM_SERVICE.write_text(line + "\n")
        p = run("pamtester", PAM_SERVICE.name, BOB[0], "authenticate", input=totp(run, BOB[2]) + "\n", check=False)
        assert p.returncode == 0 and "successfully authenticated" in p.stdout + p.stderr, p.stdout + p.stderr

        name, password, secret = ALICE
        request = f'User-Name = "{name}", User-Password = "{password}{totp(run, secret)}", {status}'
        p = radclient(run, port, "auth", request)
        assert "Received Access-Accept" in p.stdout, p.stdout + p.stderr + log_path.read_text()
        p = radclient(run, port, "auth", request)  # the same code again: a replay
        assert "Received Access-Reject" in p.stdout, p.stdout + p.stderr

        reload_cmd = unit["Service"]["ExecReload"][-1].replace("$MAINPID", str(server.pid))
        run(*shlex.split(reload_cmd))
        time.sleep(0.5)
        assert "Received Access-Accept" in radclient(run, port, "status", status).stdout
        assert server.poll() is None

        server.send_signal(signal.SIGTERM)  # systemctl stop
        assert server.wait(timeout=15) == 0, log_path.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        PAM_SERVICE.unlink(missing_ok=True)
    for path in STORE.parent.iterdir():
        assert owner_mode(path)[0] == "otp", path

    # -- upgrade (a reinstall runs the same maintainer scripts): store, key and config kept ----------------------------
    config_text = CONFIG.read_text()
    run("apt-get", "install", "-y", "--reinstall", deb, env=APT_ENV)
    assert KEY.read_bytes() == key_before and owner_mode(KEY) == ("otp", "otp", 0o600)
    assert CONFIG.read_text() == config_text and owner_mode(CONFIG) == ("root", "otp", 0o640)
    users = json.loads(run("otp-admin", "user", "list", "--json").stdout)
    assert sorted(u["name"] for u in users) == ["alice", "bob", "carol"]

    # -- remove: the program goes, the data, the config and the user stay -------------------------------------------
    store_digest = hashlib.sha256(STORE.read_bytes()).hexdigest()
    run("apt-get", "remove", "-y", PKG, env=APT_ENV)
    assert package_status(run) == "deinstall ok config-files"
    for gone in ("/usr/bin/otp-admin", "/usr/bin/otp-radiusd", "/usr/bin/otp-web", "/usr/lib/otp-server",
                 str(UNIT_PATH), str(WEB_UNIT_PATH)):
        assert not os.path.lexists(gone), gone
    assert KEY.read_bytes() == key_before
    assert hashlib.sha256(STORE.read_bytes()).hexdigest() == store_digest
    assert CONFIG.read_text() == config_text
    pwd.getpwnam("otp")

    # -- purge: nothing left behind, nothing said by the maintainer scripts ----------------------------------------
    p = run("apt-get", "purge", "-y", PKG, env=APT_ENV)
    # apt runs dpkg on a pseudo-terminal: what the maintainer scripts print comes out on its stdout
    said = [line for line in (p.stdout + p.stderr).splitlines()
            if re.search(r"(?i)crontab|deluser|userdel|delgroup|groupdel|warning|error", line)]
    assert not said, p.stdout + p.stderr  # deluser used to warn "'/usr/bin/crontab' not executed" here
    assert package_status(run) in ("", "unknown ok not-installed")
    with pytest.raises(KeyError):
        pwd.getpwnam("otp")
    with pytest.raises(KeyError):
        grp.getgrnam("otp")
    after = snapshot()
    left = sorted(p for p in after - before if p not in SHADOW_BACKUPS)
    assert not left, f"left behind: {left}"
    lost = sorted(before - after)
    assert not lost, f"removed although not the package's: {lost}"
