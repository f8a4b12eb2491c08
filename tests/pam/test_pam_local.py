"""Local mode through real PAM stacks: pam_python.so loading pam_otp.py, driven by pamtester.

The module runs in the real clock, so codes come from `oathtool` for now (the policy's window covers the seconds
between computing a code and checking it).
"""

from __future__ import annotations

import subprocess

from pam_module.pamconfig import auth_line
from tests.kit.codes import totp_after as totp  # the PAM tests count in time steps from now
from tests.kit.codes import wrong_totp
from tests.kit.pamservices import PAM_D, pwdfile_with
from tests.kit.pamtester import pamtester
from tests.kit.tools import tool

from .pamkit import OtpEnv, module_line


def test_the_printed_line_is_what_otp_admin_prints(otp: OtpEnv):
    printed = otp.admin("pam-config", "--mode", "local").stdout.strip()
    assert printed == auth_line("local", config=otp.config)
    assert printed.startswith("auth required pam_python.so /") and "mode=local" in printed


def test_right_wrong_replayed(otp: OtpEnv, pam_service):
    secret = otp.add_user("alice")
    service = pam_service([module_line("local", config=otp.config)])
    r = pamtester(service, "alice", [wrong_totp(secret)])
    assert r.status == "PAM_AUTH_ERR" and "One-time password: " in r.output
    code = totp(secret)
    r = pamtester(service, "alice", [code])
    assert r.status == "PAM_SUCCESS", r.output
    assert pamtester(service, "alice", [code]).status == "PAM_AUTH_ERR"  # replay
    reasons = [row["reason"] for row in otp.audit("alice") if row["door"] == "pam"]
    assert reasons[-3:] == ["wrong_code", "ok", "replay"]


def test_locked_user(otp: OtpEnv, pam_service):
    secret = otp.add_user("alice")
    service = pam_service([module_line("local", config=otp.config)])
    near = {totp(secret, k) for k in range(-3, 4)}
    wrong = [c for c in ("111111", "222222", "333333", "444444") if c not in near][:3]
    for code in wrong:  # max_failures = 3
        assert pamtester(service, "alice", [code]).status in ("PAM_AUTH_ERR", "PAM_MAXTRIES")
    r = pamtester(service, "alice", [totp(secret)])
    assert r.status == "PAM_MAXTRIES"
    assert "One-time password: " in r.output
    otp.admin("user", "unlock", "alice")
    assert pamtester(service, "alice", [totp(secret)]).status == "PAM_SUCCESS"


def test_unknown_and_tokenless_users_look_like_wrong_codes(otp: OtpEnv, pam_service):
    otp.admin("user", "add", "notoken")
    service = pam_service([module_line("local", config=otp.config)])
    for user in ("nobody", "notoken"):
        r = pamtester(service, user, ["123456"])
        assert r.status == "PAM_AUTH_ERR" and "One-time password: " in r.output


def test_nullok_lets_tokenless_users_through_the_next_module(otp: OtpEnv, pam_service):
    otp.admin("user", "add", "notoken")
    secret = otp.add_user("alice")
    service = pam_service([module_line("local", "nullok", config=otp.config), "auth required pam_permit.so"])
    r = pamtester(service, "notoken", [])
    assert r.status == "PAM_SUCCESS" and "One-time password" not in r.output
    assert pamtester(service, "alice", [wrong_totp(secret)]).status == "PAM_AUTH_ERR"


def test_forward_pass_with_pam_pwdfile(otp: OtpEnv, pam_service, tmp_path):
    """Password and code typed together: the code checked here, the password by the next module."""
    secret = otp.add_user("alice")
    pwdfile = pwdfile_with(tmp_path, "alice", "unix-pw")
    service = pam_service([module_line("local", "forward_pass", config=otp.config),
                           f"auth required pam_pwdfile.so pwdfile={pwdfile} use_first_pass"])
    r = pamtester(service, "alice", ["unix-pw" + totp(secret)])
    assert r.status == "PAM_SUCCESS", r.output
    assert "Password and one-time password: " in r.output and r.output.count(":") <= 3  # one prompt only
    assert pamtester(service, "alice", ["bad-pw" + totp(secret, 1)]).status == "PAM_AUTH_ERR"


def test_separate_prompt_after_the_password_module(otp: OtpEnv, pam_service, tmp_path):
    secret = otp.add_user("alice")
    pwdfile = pwdfile_with(tmp_path, "alice", "unix-pw")
    service = pam_service([f"auth required pam_pwdfile.so pwdfile={pwdfile}",
                           module_line("local", config=otp.config)])
    r = pamtester(service, "alice", ["unix-pw", totp(secret)])
    assert r.status == "PAM_SUCCESS", r.output
    assert "Password: " in r.output and "One-time password: " in r.output


def test_store_password_and_challenge(otp: OtpEnv, pam_service):
    secret = otp.add_user("carol", password="store-pw")
    service = pam_service([module_line("local", "first_factor=store", config=otp.config)])
    assert pamtester(service, "carol", ["store-pw" + totp(secret)]).status == "PAM_SUCCESS"
    r = pamtester(service, "carol", ["store-pw", totp(secret, 1)])
    assert r.status == "PAM_SUCCESS", r.output
    assert "Enter your one-time password: " in r.output


def test_prompt_with_spaces_in_brackets(otp: OtpEnv, pam_service):
    secret = otp.add_user("alice")
    service = pam_service([module_line("local", "prompt=Verification code for this host: ", config=otp.config)])
    assert "[prompt=Verification code for this host: ]" in (PAM_D / service).read_text()
    r = pamtester(service, "alice", [totp(secret)])
    assert r.status == "PAM_SUCCESS" and "Verification code for this host: " in r.output


def test_broken_setup_is_never_success(otp: OtpEnv, pam_service, tmp_path):
    otp.add_user("alice")
    missing = pam_service([module_line("local", config=tmp_path / "missing.toml")])
    assert pamtester(missing, "alice", ["123456"]).status == "PAM_AUTHINFO_UNAVAIL"
    bad = pam_service([module_line("local", "mode=nonsense", config=otp.config)])
    assert pamtester(bad, "alice", ["123456"]).status == "PAM_SERVICE_ERR"
    nopath = pam_service([f"auth required pam_python.so {tmp_path}/nowhere/pam_otp.py mode=local"])
    assert pamtester(nopath, "alice", ["123456"]).status != "PAM_SUCCESS"


def test_setcred_and_account_do_not_get_in_the_way(otp: OtpEnv, pam_service):
    secret = otp.add_user("alice")
    line = module_line("local", config=otp.config)
    rest = line.removeprefix("auth required ")
    service = pam_service([line, f"account required {rest}", "account required pam_permit.so"])
    p = subprocess.run([tool("pamtester"), service, "alice", "authenticate", "setcred", "acct_mgmt"],
                       input=totp(secret) + "\n", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_a_user_without_a_token_is_told_where_to_enrol_one(otp: OtpEnv, pam_service):
    with otp.config.open("a") as config:
        config.write('\n[web]\npublic_url = "https://otp.example.org"\n')
    otp.admin("user", "add", "newbie", "--password-stdin", input="pw-of-newbie\n")
    service = pam_service([module_line("local", "first_factor=store", config=otp.config)])
    r = pamtester(service, "newbie", ["pw-of-newbie"])
    assert r.status == "PAM_AUTH_ERR" and "enrol one at https://otp.example.org" in r.output
    r = pamtester(service, "newbie", ["wrong-password"])
    assert r.status == "PAM_AUTH_ERR" and "enrol" not in r.output
