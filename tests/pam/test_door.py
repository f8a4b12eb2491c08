"""The PAM glue with a fake pamh (the real stacks are driven by pamtester in test_pam_*.py).

The clock is a parameter here, so TOTP codes are computed for a fixed `now`.
"""

from __future__ import annotations

import json
import time

import pytest

from otpbase.radius.constants import ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT, REPLY_MESSAGE, STATE
from pam_module.door import authenticate
from pam_module.log import DEBUG, Log
from tests.kit.codes import totp_after as totp  # the PAM tests count in time steps from now
from tests.kit.radius_client import attributes

from .pamkit import FakePamh, OtpEnv, make_reply

NOW = float(int(time.time()) // 30 * 30 + 7)
MODULE = "/x/pam_module/pam_otp.py"


def run(pamh, *options, clock=NOW):
    log = Log(pamh.service, path="/nonexistent/log")
    rc = authenticate(pamh, [MODULE, *options], clock=lambda: clock, log=log)
    return rc, log


@pytest.fixture
def local(otp: OtpEnv):
    secret = otp.add_user("alice")
    otp.admin("user", "add", "notoken")
    return otp, secret, f"config={otp.config}"


def test_right_code(local):
    _, secret, cfg = local
    pamh = FakePamh("alice", [totp(secret, now=NOW)])
    rc, _ = run(pamh, cfg)
    assert rc == FakePamh.PAM_SUCCESS
    assert pamh.asked == ["One-time password: "]
    assert pamh.authtok is None  # nothing handed on without forward_pass


def test_wrong_and_replayed(local):
    _, secret, cfg = local
    code = totp(secret, now=NOW)
    assert run(FakePamh("alice", ["000000" if code != "000000" else "111111"]), cfg)[0] == FakePamh.PAM_AUTH_ERR
    assert run(FakePamh("alice", [code]), cfg)[0] == FakePamh.PAM_SUCCESS
    assert run(FakePamh("alice", [code]), cfg)[0] == FakePamh.PAM_AUTH_ERR  # replay


def test_locked_user(local):
    otp, secret, cfg = local
    wrong = [c for c in ("000001", "000002", "000003", "000004") if c != totp(secret, now=NOW)][:3]
    for code in wrong:  # max_failures = 3 in the test config
        run(FakePamh("alice", [code]), cfg)
    pamh = FakePamh("alice", [totp(secret, now=NOW)])
    assert run(pamh, cfg)[0] == FakePamh.PAM_MAXTRIES
    assert pamh.asked == ["One-time password: "]  # asked all the same: the lock is not probed without a code
    otp.admin("user", "unlock", "alice")
    assert run(FakePamh("alice", [totp(secret, now=NOW)]), cfg)[0] == FakePamh.PAM_SUCCESS


@pytest.mark.parametrize("user", ["nobody", "notoken"])
def test_unknown_user_and_user_without_token_are_prompted_and_refused(local, user):
    _, _, cfg = local
    pamh = FakePamh(user, ["123456"])
    assert run(pamh, cfg)[0] == FakePamh.PAM_AUTH_ERR
    assert pamh.asked == ["One-time password: "]


def test_nullok(local):
    _, _, cfg = local
    pamh = FakePamh("notoken", [])
    assert run(pamh, cfg, "nullok")[0] == FakePamh.PAM_IGNORE
    assert pamh.asked == []
    pamh = FakePamh("alice", ["999999"])  # a user with a token is still asked
    assert run(pamh, cfg, "nullok")[0] == FakePamh.PAM_AUTH_ERR and pamh.asked


def test_forward_pass_hands_the_password_on(local):
    _, secret, cfg = local
    pamh = FakePamh("alice", ["unix pass" + totp(secret, now=NOW)])
    assert run(pamh, cfg, "forward_pass")[0] == FakePamh.PAM_SUCCESS
    assert pamh.asked == ["Password and one-time password: "]
    assert pamh.authtok == "unix pass"
    pamh = FakePamh("alice", ["unix pass000000"])  # wrong code: the password is still handed on (same timing)
    assert run(pamh, cfg, "forward_pass")[0] == FakePamh.PAM_AUTH_ERR
    assert pamh.authtok == "unix pass"


def test_use_first_pass(local):
    _, secret, cfg = local
    pamh = FakePamh("alice", [], authtok=totp(secret, now=NOW))
    assert run(pamh, cfg, "use_first_pass")[0] == FakePamh.PAM_SUCCESS and pamh.asked == []
    pamh = FakePamh("alice", ["123456"])
    assert run(pamh, cfg, "use_first_pass")[0] == FakePamh.PAM_AUTH_ERR and pamh.asked == []
    pamh = FakePamh("alice", [], authtok="pw" + totp(secret, 1, now=NOW))
    assert run(pamh, cfg, "use_first_pass", "forward_pass")[0] == FakePamh.PAM_SUCCESS
    assert pamh.authtok == "pw" and pamh.asked == []


def test_try_first_pass_asks_when_the_earlier_password_is_not_a_code(local):
    _, secret, cfg = local
    pamh = FakePamh("alice", [totp(secret, now=NOW)], authtok="unix-password")
    assert run(pamh, cfg, "try_first_pass")[0] == FakePamh.PAM_SUCCESS
    assert pamh.asked == ["One-time password: "]
    pamh = FakePamh("alice", [totp(secret, 1, now=NOW)])  # nothing earlier: asks at once
    assert run(pamh, cfg, "try_first_pass")[0] == FakePamh.PAM_SUCCESS and len(pamh.asked) == 1


def test_try_first_pass_does_not_count_the_unix_password_as_a_wrong_code(local):
    otp, secret, cfg = local
    for step in (0, 1):
        pamh = FakePamh("alice", [totp(secret, step, now=NOW)], authtok="unix-password")
        assert run(pamh, cfg, "try_first_pass")[0] == FakePamh.PAM_SUCCESS
    audit = otp.admin("audit", "--user", "alice", "--json").stdout
    assert "wrong_code" not in audit


def test_the_audit_says_where_from_and_no_password_is_its_own_reason(otp: OtpEnv):
    secret = otp.add_user("dave")  # a token, but no password in the store
    pamh = FakePamh("dave", ["anything" + totp(secret, now=NOW)], rhost="198.51.100.7")
    rc, log = run(pamh, f"config={otp.config}", "first_factor=store")
    assert rc == FakePamh.PAM_AUTH_ERR
    assert [text for _, text in log.lines] == [
        "user=dave rhost=198.51.100.7 mode=local: authentication failure (no_password)"]
    audit = json.loads(otp.admin("audit", "--user", "dave", "--json").stdout)
    assert [(r["client"], r["source"], r["reason"]) for r in audit if r["door"] == "pam"] == [
        ("otp-unit:198.51.100.7", "198.51.100.7", "no_password")]


def test_first_factor_store_with_challenge(otp: OtpEnv):
    secret = otp.add_user("carol", password="s3cret")
    cfg = f"config={otp.config}"
    pamh = FakePamh("carol", ["s3cret" + totp(secret, now=NOW)])
    assert run(pamh, cfg, "first_factor=store")[0] == FakePamh.PAM_SUCCESS
    assert pamh.asked == ["Password and one-time password: "]
    pamh = FakePamh("carol", ["s3cret", totp(secret, 1, now=NOW)])
    assert run(pamh, cfg, "first_factor=store", clock=NOW + 30)[0] == FakePamh.PAM_SUCCESS
    assert pamh.asked == ["Password and one-time password: ", "Enter your one-time password: "]
    pamh = FakePamh("carol", ["wrong" + totp(secret, 2, now=NOW)])
    assert run(pamh, cfg, "first_factor=store", clock=NOW + 60)[0] == FakePamh.PAM_AUTH_ERR


def test_code_with_spaces_is_accepted(local):
    _, secret, cfg = local
    code = totp(secret, now=NOW)
    assert run(FakePamh("alice", [f" {code[:3]} {code[3:]} "]), cfg)[0] == FakePamh.PAM_SUCCESS


def test_debug_log_never_holds_a_code_or_password(local):
    _, secret, cfg = local
    codes = [totp(secret, k, now=NOW) for k in (-1, 0, 1)]
    lines, severities = [], set()
    for answers, opts in (([codes[1]], ()), ([codes[1]], ()), (["hunter2" + codes[2]], ("forward_pass",)),
                          (["987654"], ())):
        _, log = run(FakePamh("alice", answers), cfg, "debug", *opts)
        lines += [text for _, text in log.lines]
        severities |= {sev for sev, _ in log.lines}
    assert DEBUG in severities
    joined = "\n".join(lines)
    assert "alice" in joined
    for secret_text in [*codes, "987654", "hunter2"]:
        assert secret_text not in joined


def test_conversation_failure(local):
    _, _, cfg = local
    assert run(FakePamh("alice", []), cfg)[0] == FakePamh.PAM_CONV_ERR


def test_bad_arguments_are_a_service_error(local):
    _, _, cfg = local
    rc, log = run(FakePamh("alice", ["123456"]), cfg, "mode=kerberos")
    assert rc == FakePamh.PAM_SERVICE_ERR and "bad module argument" in log.lines[0][1]
    assert run(FakePamh("alice", ["1"]), cfg, "forward_pass", "first_factor=store")[0] == FakePamh.PAM_SERVICE_ERR


def test_unknown_argument_is_logged_and_ignored(local):
    _, secret, cfg = local
    rc, log = run(FakePamh("alice", [totp(secret, now=NOW)]), cfg, "frobnicate=1")
    assert rc == FakePamh.PAM_SUCCESS
    assert any("unknown module argument ignored: frobnicate" in text for _, text in log.lines)


def test_missing_config_or_store_is_unavailable(tmp_path, local):
    otp, _, _ = local
    assert run(FakePamh("alice", ["123456"]), f"config={tmp_path}/none.toml")[0] == FakePamh.PAM_AUTHINFO_UNAVAIL
    (otp.root / "otp.key").unlink()
    pamh = FakePamh("alice", ["123456"])
    assert run(pamh, f"config={otp.config}")[0] == FakePamh.PAM_AUTHINFO_UNAVAIL
    assert pamh.asked == []  # nothing asked when the answer cannot be checked


@pytest.mark.parametrize("user", ["", None, "a\nb"])
def test_no_usable_user(local, user):
    _, _, cfg = local
    assert run(FakePamh(user, ["123456"]), cfg)[0] == FakePamh.PAM_USER_UNKNOWN


# -- radius mode against a scripted server ------------------------------------------------------------------------


def radius_opts(tmp_path, *ports, secret="testing123"):
    path = tmp_path / "secret"
    path.write_text(secret + "\n")
    return ["mode=radius", *(f"server=127.0.0.1:{p}" for p in ports), f"secret_file={path}", "timeout=0.3",
            "retries=0"]


def attrs_of(packet):
    """Each attribute's first value, by type."""
    return dict(reversed(attributes(packet)))


def test_radius_accept_reject(tmp_path, scripted_server):
    srv = scripted_server(lambda req: [make_reply(req, ACCESS_ACCEPT if attrs_of(req)[1] == b"alice"
                                                  else ACCESS_REJECT, b"testing123")])
    pamh = FakePamh("alice", ["123456"], service="sshd", rhost="192.0.2.9")
    assert run(pamh, *radius_opts(tmp_path, srv.port))[0] == FakePamh.PAM_SUCCESS
    sent = attrs_of(srv.requests[0])
    assert sent[32] == b"sshd" and sent[31] == b"192.0.2.9"  # NAS-Identifier defaults to the service
    assert run(FakePamh("bob", ["123456"]), *radius_opts(tmp_path, srv.port))[0] == FakePamh.PAM_AUTH_ERR


def test_radius_challenge_is_relayed(tmp_path, scripted_server):
    def handler(req):
        a = attrs_of(req)
        if STATE not in a:
            return [make_reply(req, ACCESS_CHALLENGE, b"testing123", [(REPLY_MESSAGE, b"Code sent by e-mail"),
                                                                      (STATE, b"xyz")])]
        return [make_reply(req, ACCESS_ACCEPT if a[STATE] == b"xyz" else ACCESS_REJECT, b"testing123")]
    srv = scripted_server(handler)
    pamh = FakePamh("alice", ["password", "424242"])
    assert run(pamh, *radius_opts(tmp_path, srv.port))[0] == FakePamh.PAM_SUCCESS
    assert pamh.asked == ["One-time password: ", "Code sent by e-mail: "]


def test_radius_endless_challenges_fail(tmp_path, scripted_server):
    srv = scripted_server(lambda req: [make_reply(req, ACCESS_CHALLENGE, b"testing123", [(STATE, b"s")])])
    pamh = FakePamh("alice", ["1"] * 10)
    assert run(pamh, *radius_opts(tmp_path, srv.port))[0] == FakePamh.PAM_AUTH_ERR
    assert len(pamh.asked) == 4


def test_radius_challenge_without_state_fails(tmp_path, scripted_server):
    srv = scripted_server(lambda req: [make_reply(req, ACCESS_CHALLENGE, b"testing123", [(REPLY_MESSAGE, b"?")])])
    assert run(FakePamh("alice", ["1", "2"]), *radius_opts(tmp_path, srv.port))[0] == FakePamh.PAM_AUTH_ERR


def test_radius_unreachable_is_unavailable_never_success(tmp_path, scripted_server):
    silent = scripted_server(lambda req: [])
    rc, log = run(FakePamh("alice", ["123456"]), *radius_opts(tmp_path, silent.port))
    assert rc == FakePamh.PAM_AUTHINFO_UNAVAIL
    assert any("unavailable" in text for _, text in log.lines)


def test_radius_wrong_secret_is_unavailable(tmp_path, scripted_server):
    srv = scripted_server(lambda req: [make_reply(req, ACCESS_ACCEPT, b"testing123")])
    opts = radius_opts(tmp_path, srv.port, secret="not-the-secret")
    assert run(FakePamh("alice", ["123456"]), *opts)[0] == FakePamh.PAM_AUTHINFO_UNAVAIL


def test_radius_missing_secret_file(tmp_path):
    opts = ["mode=radius", "server=127.0.0.1:1812", f"secret_file={tmp_path}/nope"]
    assert run(FakePamh("alice", ["123456"]), *opts)[0] == FakePamh.PAM_AUTHINFO_UNAVAIL


def test_radius_forward_pass_sends_only_the_code(tmp_path, scripted_server):
    srv = scripted_server(lambda req: [make_reply(req, ACCESS_ACCEPT, b"testing123")])
    pamh = FakePamh("alice", ["hunter2654321"])
    assert run(pamh, *radius_opts(tmp_path, srv.port), "forward_pass", "nas_identifier=bastion")[0] == 0
    assert pamh.authtok == "hunter2"
    import pyrad.packet

    req = srv.requests[0]
    hidden = attrs_of(req)[2]
    assert pyrad.packet.AuthPacket(secret=b"testing123", authenticator=req[4:20]).PwDecrypt(hidden) == "654321"
    assert attrs_of(req)[32] == b"bastion"
