"""Radius mode through real PAM stacks against a running otp-radiusd; Debian's pam_radius_auth against it too;
and the two doors sharing one store (a code used through one is refused by the other).
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import otpbase
import pam_module
from tests.kit.codes import totp_after as totp  # the PAM tests count in time steps from now
from tests.kit.codes import wrong_totp
from tests.kit.config import Client
from tests.kit.pamtester import pamtester
from tests.kit.ports import free_udp_port
from tests.kit.radius_client import SECRET

from .pamkit import OtpEnv, module_line


def radius_line(otp: OtpEnv, secret_file, *options: str, ports: list[int] | None = None) -> str:
    servers = [f"127.0.0.1:{p}" for p in (ports or [otp.auth_port])]
    return module_line("radius", "timeout=1", "retries=0", *options, servers=servers, secret_file=secret_file)


def test_printed_radius_line(otp: OtpEnv, secret_file):
    printed = otp.admin("pam-config", "--mode", "radius", "--server", "127.0.0.1:1812", "--server", "[::1]:1812",
                        "--secret-file", str(secret_file)).stdout.strip()
    assert " mode=radius server=127.0.0.1:1812 server=[::1]:1812 " in printed
    assert printed.endswith(f"secret_file={secret_file}")


def test_right_wrong_replayed_locked(otp: OtpEnv, radiusd, pam_service, secret_file):
    secret = otp.add_user("alice")
    radiusd()
    service = pam_service([radius_line(otp, secret_file)])
    r = pamtester(service, "alice", [wrong_totp(secret)])
    assert r.status == "PAM_AUTH_ERR" and "One-time password: " in r.output
    code = totp(secret)
    assert pamtester(service, "alice", [code]).status == "PAM_SUCCESS"
    assert pamtester(service, "alice", [code]).status == "PAM_AUTH_ERR"  # replay
    first, second = wrong_totp(secret), wrong_totp(secret)
    while second == first:
        second = wrong_totp(secret)
    for wrong in (first, second):  # with the replay: three failures in a row, the user is locked
        assert pamtester(service, "alice", [wrong]).status == "PAM_AUTH_ERR"
    assert pamtester(service, "alice", [totp(secret, 1)]).status == "PAM_AUTH_ERR"  # locked: refused, right code
    assert [row["reason"] for row in otp.audit("alice") if row["door"] != "admin"][-6:] == [
        "wrong_code", "ok", "replay", "wrong_code", "wrong_code", "locked"]
    assert pamtester(service, "nobody", ["123456"]).status == "PAM_AUTH_ERR"


def test_failover_when_the_first_server_is_down(otp: OtpEnv, radiusd, pam_service, secret_file):
    secret = otp.add_user("alice")
    radiusd()
    closed = free_udp_port()  # nothing listens: ICMP port unreachable, next server at once
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blackhole:  # reads and never answers: a timeout
        blackhole.bind(("127.0.0.1", 0))
        silent = blackhole.getsockname()[1]
        service = pam_service([radius_line(otp, secret_file, ports=[closed, silent, otp.auth_port])])
        r = pamtester(service, "alice", [totp(secret)])
        assert r.status == "PAM_SUCCESS", r.output
        assert 1 <= r.seconds < 5  # one timeout (timeout=1, retries=0) for the silent server


def test_all_servers_down_is_unavailable(otp: OtpEnv, pam_service, secret_file):
    otp.add_user("alice")
    service = pam_service([radius_line(otp, secret_file, ports=[free_udp_port(), free_udp_port()]),
                           "auth optional pam_permit.so"])
    assert pamtester(service, "alice", ["123456"]).status == "PAM_AUTHINFO_UNAVAIL"


def test_wrong_shared_secret_is_unavailable(otp: OtpEnv, radiusd, pam_service, tmp_path):
    otp.add_user("alice")
    radiusd()
    bad = tmp_path / "bad.secret"
    bad.write_text("not-the-secret\n")
    service = pam_service([radius_line(otp, bad)])
    assert pamtester(service, "alice", ["123456"]).status == "PAM_AUTHINFO_UNAVAIL"


def test_challenge_round_trip(otp: OtpEnv, radiusd, pam_service, secret_file):
    """Server checks the store password: the password alone gets a challenge, relayed as a second prompt."""
    otp.clients[0] = Client("pam", "127.0.0.1", first_factor="store")
    secret = otp.add_user("carol", password="store-pw")
    radiusd()
    service = pam_service([radius_line(otp, secret_file, "prompt=Password: ")])
    r = pamtester(service, "carol", ["store-pw", totp(secret)])
    assert r.status == "PAM_SUCCESS", r.output
    assert "Password: " in r.output and "Enter your one-time password" in r.output
    assert pamtester(service, "carol", ["store-pw" + totp(secret, 1)]).status == "PAM_SUCCESS"  # in one answer
    assert pamtester(service, "carol", ["wrong-pw", totp(secret, 1)]).status == "PAM_AUTH_ERR"


def test_code_used_through_local_pam_is_refused_by_radiusd(otp: OtpEnv, radiusd, pam_service, secret_file):
    secret = otp.add_user("alice")
    radiusd()
    local = pam_service([module_line("local", config=otp.config)])
    remote = pam_service([radius_line(otp, secret_file)])
    code = totp(secret)
    assert pamtester(local, "alice", [code]).status == "PAM_SUCCESS"
    assert pamtester(remote, "alice", [code]).status == "PAM_AUTH_ERR"
    assert otp.audit("alice")[-1]["reason"] == "replay"


def test_code_used_through_radiusd_is_refused_by_local_pam(otp: OtpEnv, radiusd, pam_service, secret_file):
    secret = otp.add_user("alice")
    radiusd()
    local = pam_service([module_line("local", config=otp.config)])
    remote = pam_service([radius_line(otp, secret_file)])
    code = totp(secret)
    assert pamtester(remote, "alice", [code]).status == "PAM_SUCCESS"
    assert pamtester(local, "alice", [code]).status == "PAM_AUTH_ERR"
    assert otp.audit("alice")[-1]["reason"] == "replay"


# -- Debian's pam_radius_auth pointed at otp-radiusd ----------------------------------------------------------------


def pam_radius_auth_service(otp: OtpEnv, pam_service, tmp_path, *extra: str) -> str:
    conf = tmp_path / "pam_radius_auth.conf"
    conf.write_text(f"127.0.0.1:{otp.auth_port} {SECRET.decode()} 3\n")
    conf.chmod(0o600)
    return pam_service([" ".join(["auth required pam_radius_auth.so", f"conf={conf}", *extra])])


def test_pam_radius_auth_password_and_code_in_one_prompt(otp: OtpEnv, radiusd, pam_service, tmp_path):
    # pam_radius_auth 2.0 sends no Message-Authenticator: its client entry must not require one
    otp.clients[0] = Client("pam", "127.0.0.1", first_factor="store", require_message_authenticator=False)
    secret = otp.add_user("carol", password="store-pw")
    radiusd()
    service = pam_radius_auth_service(otp, pam_service, tmp_path)
    r = pamtester(service, "carol", ["store-pw" + totp(secret)])
    assert r.status == "PAM_SUCCESS", r.output
    assert pamtester(service, "carol", ["store-pw" + totp(secret)]).status == "PAM_AUTH_ERR"  # replay
    assert pamtester(service, "carol", ["nope" + totp(secret, 1)]).status == "PAM_AUTH_ERR"


def test_pam_radius_auth_challenge_round_trip(otp: OtpEnv, radiusd, pam_service, tmp_path):
    otp.clients[0] = Client("pam", "127.0.0.1", first_factor="store", require_message_authenticator=False)
    secret = otp.add_user("carol", password="store-pw")
    radiusd()
    service = pam_radius_auth_service(otp, pam_service, tmp_path)
    r = pamtester(service, "carol", ["store-pw", totp(secret)])
    assert r.status == "PAM_SUCCESS", r.output
    assert "Enter your one-time password" in r.output
    r = pamtester(service, "carol", ["store-pw", wrong_totp(secret)])
    assert r.status == "PAM_AUTH_ERR"


def test_pam_radius_auth_code_only_after_pam_unix_style_password(otp: OtpEnv, radiusd, pam_service, tmp_path):
    """first_factor = "none": the whole User-Password is the code (the password is another module's job)."""
    otp.clients[0] = Client("pam", "127.0.0.1", first_factor="none", require_message_authenticator=False)
    secret = otp.add_user("alice")
    radiusd()
    service = pam_radius_auth_service(otp, pam_service, tmp_path, "[prompt=One-time password]")
    start = time.monotonic()
    r = pamtester(service, "alice", [totp(secret)])
    assert r.status == "PAM_SUCCESS", r.output
    assert time.monotonic() - start < 5


def test_installed_copy_needs_no_pythonpath(otp: OtpEnv, radiusd, pam_service, secret_file, tmp_path):
    """A non-editable install (the package's files in a site directory): pam_otp.py adds that directory itself."""
    secret = otp.add_user("alice")
    radiusd()
    site = tmp_path / "site-packages"
    for package in (pam_module, otpbase):  # what a wheel installs side by side (otpbase: the escaping)
        shutil.copytree(Path(package.__file__).parent, site / package.__name__,
                        ignore=shutil.ignore_patterns("__pycache__"))
    line = (f"auth required pam_python.so {site}/pam_module/pam_otp.py mode=radius server=127.0.0.1:{otp.auth_port}"
            f" secret_file={secret_file}")
    service = pam_service([line])
    r = pamtester(service, "alice", [totp(secret)])
    assert r.status == "PAM_SUCCESS", r.output
