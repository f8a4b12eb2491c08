"""FreeRADIUS as the reference: installed if missing, run in the foreground from a throw-away config directory.

The Debian config (/etc/freeradius/3.0) is copied to a temporary directory for its dictionaries; everything that
shapes the request path is replaced: one `radiusd.conf` with a PAP-only virtual server (`files` + `pap`), a users
file with `Cleartext-Password` for every benchmark user, one client (the generator's source address), logging to a
file in the directory (no per-request lines), no reject delay, free loopback ports and a 4 MiB socket receive
buffer (as otp-radiusd asks for).

    with FreeRadius(users, secret=b"testing123") as fr:
        loadgen.run(requests, fr.address)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from bench import loadgen

__all__ = ["FreeRadius", "ensure_installed", "free_udp_port"]

DEBIAN_CONFIG = Path("/etc/freeradius/3.0")
_PACKAGE = "freeradius"


def ensure_installed() -> str:
    """The path of the `freeradius` binary, installing the Debian package first if it is missing."""
    found = shutil.which("freeradius") or (Path("/usr/sbin/freeradius").exists() and "/usr/sbin/freeradius")
    if found and DEBIAN_CONFIG.is_dir():
        return str(found)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("installing the Debian package freeradius (reference server)...", flush=True)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", _PACKAGE], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    found = shutil.which("freeradius") or "/usr/sbin/freeradius"
    if not Path(found).exists():
        raise RuntimeError("freeradius is still missing after apt-get install")
    return found


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_RADIUSD_CONF = """\
# Written by bench/freeradius.py: the PAP-only reference for the benchmark.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = ${{exec_prefix}}/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = ${{logdir}}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
certdir = ${{confdir}}/certs
cadir = ${{confdir}}/certs
run_dir = {dir}/run
db_dir = ${{raddbdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/${{name}}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no

log {{
    destination = files
    file = ${{logdir}}/radius.log
    colourise = no
    auth = no
    auth_badpass = no
    auth_goodpass = no
}}

security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}}

proxy_requests = no

client bench {{
    ipaddr = {client}
    secret = {secret}
    require_message_authenticator = no
}}

thread pool {{
    start_servers = {threads}
    max_servers = {max_threads}
    min_spare_servers = 3
    max_spare_servers = {max_threads}
    max_requests_per_server = 0
    auto_limit_acct = no
}}

modules {{
    files {{
        filename = ${{confdir}}/bench-users
    }}
    pap {{
        normalise = yes
    }}
}}

instantiate {{
}}

server default {{
    listen {{
        type = auth
        ipaddr = {host}
        port = {port}
        recv_buff = 4194304
    }}
    authorize {{
        files
        pap
    }}
    authenticate {{
        Auth-Type PAP {{
            pap
        }}
    }}
    post-auth {{
    }}
}}
"""


class FreeRadius:
    """A FreeRADIUS server for the duration of a `with` block."""

    def __init__(self, users: Iterable[tuple[str, str]], *, secret: bytes = b"testing123", client: str = "127.0.0.1",
                 host: str = "127.0.0.1", port: int | None = None, threads: int = 5, max_threads: int = 32) -> None:
        self.users = list(users)
        self.secret = secret
        self.client = client
        self.host = host
        self.port = port or free_udp_port(host)
        self.threads = threads
        self.max_threads = max_threads
        self.binary = ensure_installed()
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def __enter__(self) -> FreeRadius:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_config(self) -> Path:
        tmp = Path(tempfile.mkdtemp(prefix="bench-freeradius-"))
        confdir = tmp / "raddb"
        # The Debian tree for its dictionaries and mods-config; the parts that shape the request path are replaced.
        shutil.copytree(DEBIAN_CONFIG, confdir, symlinks=True)
        for sub in ("mods-enabled", "sites-enabled"):
            shutil.rmtree(confdir / sub)
            (confdir / sub).mkdir()
        for sub in ("log", "run"):
            (confdir / sub).mkdir()
        (confdir / "radiusd.conf").write_text(_RADIUSD_CONF.format(
            dir=confdir, client=self.client, secret=_quote(self.secret.decode()), host=self.host, port=self.port,
            threads=self.threads, max_threads=self.max_threads))
        lines = [f'{_quote(name)} Cleartext-Password := {_quote(password)}\n' for name, password in self.users]
        (confdir / "bench-users").write_text("".join(lines))
        self.dir = tmp
        return confdir

    def start(self, wait: float = 30.0) -> None:
        confdir = self.write_config()
        check = subprocess.run([self.binary, "-C", "-d", str(confdir)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"freeradius rejected its config:\n{check.stdout[-3000:]}{check.stderr[-3000:]}")
        self.proc = subprocess.Popen([self.binary, "-f", "-d", str(confdir)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = confdir / "log" / "radius.log"
                raise RuntimeError(f"freeradius exited at start: {err}{log.read_text() if log.exists() else ''}")
            if loadgen.status_server(self.address, self.secret, source=self.client):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("freeradius did not answer within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _quote(text: str) -> str:
    if any(c in text for c in '"\\\n'):
        raise ValueError(f"unsupported character in {text!r}")
    return f'"{text}"'
