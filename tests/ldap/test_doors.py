"""The doors with first_factor = "ldap": a real otp-radiusd asked by a NAS (raw RADIUS client), and the PAM module
in local mode driven by pamtester, both against the kit's slapd; a directory that is down is a Reject (RADIUS) and
PAM_AUTHINFO_UNAVAIL (PAM), within the bound, and code-only clients are answered meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT
from otpcore import oath
from tests.kit.netfaults import HOST, closed_port, silent_server, unanswered_port
from tests.kit.pamtester import pamtester
from tests.kit.ports import free_udp_port as free_port
from tests.kit.radius_client import UdpClient, build_request, check_reply
from tests.kit.radiusd import RadiusServer
from tests.kit.slapd import Slapd
from tests.pam.pamkit import OtpEnv, module_line

from .kit import SEED, SLACK, TIMEOUT, ldap_table


def test_radius_password_and_code(radius_server: Callable[..., RadiusServer], directory: Slapd):
    server = radius_server(directory)
    assert server.otp_admin("token", "add", "alice", "--type", "totp", "--secret", oath.encode_base32(SEED),
                            "--qr", "none").returncode == 0
    server.start()
    password = directory.user("alice").password.encode()
    with UdpClient(server.address) as nas:
        now = time.time()
        assert nas.ask(build_request("alice", password + oath.totp(SEED, now).encode())).code == ACCESS_ACCEPT
        assert nas.ask(build_request("alice", b"wrong" + oath.totp(SEED, now + 30).encode())).code == ACCESS_REJECT
        challenge = nas.ask(build_request("alice", password))
        assert challenge.code == ACCESS_CHALLENGE
        answer = build_request("alice", oath.totp(SEED, now + 30).encode(), state=challenge.state)
        assert nas.ask(answer).code == ACCESS_ACCEPT
        assert nas.ask(build_request("bob", directory.user("bob").password.encode())).code == ACCESS_REJECT
    assert [d["reason"] for d in server.decisions("alice")] == ["ok", "wrong_password", "challenge", "ok"]
    assert [d["reason"] for d in server.decisions("bob")] == ["no_token"]


def test_radius_directory_down_is_a_reject_within_the_bound_and_others_are_answered(
        radius_server: Callable[..., RadiusServer], openldap: Slapd):
    """Two URLs, one unanswered and one silent: the Reject comes after about 2 x timeout; a code-only client is
    answered meanwhile (the receiving thread decides code checks; the directory check waits elsewhere)."""
    with unanswered_port() as first, silent_server() as second:
        server = radius_server(openldap, urls=[f"ldaps://{HOST}:{first}", f"ldaps://{HOST}:{second}"])
        carol = server.add_user("carol")
        server.start()
        with UdpClient(server.address) as nas, UdpClient(server.address, "127.0.0.2") as other:
            login = build_request("alice", openldap.user("alice").password.encode() + b"123456")
            started = time.monotonic()
            nas.send(login.raw)
            time.sleep(0.2)  # the login is with the directory now
            code_only = build_request("carol", carol.code().encode())
            assert other.ask(code_only).code == ACCESS_ACCEPT
            answered_others = time.monotonic() - started
            raw = nas.receive(timeout=2 * TIMEOUT + SLACK + 5)
            seconds = time.monotonic() - started
    assert raw is not None
    assert check_reply(login, raw).code == ACCESS_REJECT
    assert answered_others < TIMEOUT
    assert 2 * TIMEOUT <= seconds < 2 * TIMEOUT + SLACK
    assert [d["reason"] for d in server.decisions("alice")] == ["first_factor_unavailable"]
    assert f"directory ldaps://{HOST}:{second} failed" in server.log()


@pytest.fixture
def otp_env(tmp_path: Path) -> Callable[..., OtpEnv]:
    def make(directory: Slapd, urls: Sequence[str] | None = None) -> OtpEnv:
        env = OtpEnv(tmp_path, policy={"max_failures": 3, "lockout_seconds": 0}, auth_port=free_port(),
                     acct_port=free_port())
        env.write_config()
        with env.config.open("a") as fh:
            fh.write("\n" + ldap_table(directory, tmp_path, urls=urls))
        env.admin("init")
        return env

    return make


def test_pam_local_mode_with_the_directory(otp_env: Callable[..., OtpEnv], pam_service, directory: Slapd):
    env = otp_env(directory)
    env.admin("token", "add", "alice", "--type", "totp", "--secret", oath.encode_base32(SEED), "--qr", "none")
    service = pam_service([module_line("local", "first_factor=ldap", config=env.config)])
    password = directory.user("alice").password
    now = time.time()
    r = pamtester(service, "alice", [password + oath.totp(SEED, now)])
    assert r.status == "PAM_SUCCESS", r.output
    assert "Password and one-time password: " in r.output
    assert pamtester(service, "alice", ["wrong" + oath.totp(SEED, now + 30)]).status == "PAM_AUTH_ERR"
    r = pamtester(service, "alice", [password, oath.totp(SEED, now + 30)])
    assert r.status == "PAM_SUCCESS" and "Enter your one-time password: " in r.output, r.output
    assert pamtester(service, "nobody", [password + "123456"]).status == "PAM_AUTH_ERR"


@pytest.mark.parametrize("fault", ["closed", "silent"])
def test_pam_directory_down_is_authinfo_unavail(otp_env: Callable[..., OtpEnv], pam_service, openldap: Slapd,
                                                fault: str):
    """A directory that cannot answer is not a wrong password: PAM_AUTHINFO_UNAVAIL ("cannot retrieve
    authentication info", which a stack may treat apart, e.g. [authinfo_unavail=...]), never success."""
    env = otp_env(openldap)
    env.admin("token", "add", "alice", "--type", "totp", "--secret", oath.encode_base32(SEED), "--qr", "none")
    with (closed_port() if fault == "closed" else silent_server()) as port:
        env.config.write_text(env.config.read_text().replace(openldap.ldaps_url, f"ldaps://{HOST}:{port}"))
        service = pam_service([module_line("local", "first_factor=ldap", config=env.config)])
        r = pamtester(service, "alice", [openldap.user("alice").password + oath.totp(SEED, time.time())])
    assert r.status == "PAM_AUTHINFO_UNAVAIL", r.output
    assert r.seconds < TIMEOUT + SLACK + 1  # the interpreter's start-up on top of the bound
