"""The example PAM files in packaging/pam.d: their pam_python lines parse, and their auth stacks, as shipped, work when
pointed at this checkout and a test store, with pam_pwdfile standing in for pam_unix (which needs real accounts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pam_module.options import parse_options
from pam_module.pamconfig import auth_line
from tests.kit.codes import totp_after as totp  # the PAM tests count in time steps from now
from tests.kit.codes import wrong_totp
from tests.kit.pamservices import pwdfile_with
from tests.kit.pamtester import pamtester

from .pamkit import OtpEnv, split_pam_args

SNIPPETS = Path(__file__).resolve().parents[2] / "packaging" / "pam.d"
PACKAGED = "/usr/lib/otp-server/lib/python3.11/site-packages/pam_module/pam_otp.py"
PAM_FILES = ["sshd-keyboard-interactive", "sshd-publickey-code", "sudo"]
PASSWORD_THEN_CODE = {"sshd-keyboard-interactive": "One-time password: ", "sudo": "One-time password for sudo: "}


def otp_lines(name: str) -> list[str]:
    return [line for line in (SNIPPETS / name).read_text().splitlines() if "pam_python.so" in line
            and not line.lstrip().startswith("#")]


def localise(line: str, otp: OtpEnv) -> str:
    """The snippet's line with this checkout's module path and pythonpath, and the test config."""
    ours = split_pam_args(auth_line("local"))[3:5]  # module path, pythonpath=
    words = split_pam_args(line)
    assert words[3] == PACKAGED
    rest = [w if not w.startswith("config=") else f"config={otp.config}" for w in words[4:]]
    return " ".join([*words[:3], *ours, *(f"[{w}]" if " " in w else w for w in rest)])


@pytest.mark.parametrize("name", PAM_FILES)
def test_pam_python_lines_parse(name):
    lines = otp_lines(name)
    assert len(lines) == 1
    words = split_pam_args(lines[0])
    assert words[:3] == ["auth", "required", "pam_python.so"] and words[3] == PACKAGED
    assert parse_options(words[4:]).mode == "local"


def test_packaged_path_is_what_the_debian_package_installs():
    build = (SNIPPETS.parent / "build-deb").read_text()
    assert "PREFIX=/usr/lib/otp-server" in build and "SITE=$VENV/lib/python$PYVER/site-packages" in build


def test_publickey_code_stack_asks_only_the_code(otp: OtpEnv, pam_service):
    secret = otp.add_user("alice")
    auth = [line for line in (SNIPPETS / "sshd-publickey-code").read_text().splitlines()
            if line.startswith("auth")]
    assert len(auth) == 1
    service = pam_service([localise(auth[0], otp)])
    r = pamtester(service, "alice", [totp(secret)])
    assert r.status == "PAM_SUCCESS", r.output
    assert r.output.count("password") == 1 and "One-time password: " in r.output


def auth_lines(name: str) -> list[str]:
    return [line for line in (SNIPPETS / name).read_text().splitlines() if line.split()[:1] == ["auth"]]


def shipped_stack(name: str, otp: OtpEnv, pwdfile: Path) -> list[str]:
    """The snippet's auth lines as they are, with this checkout's module and pam_pwdfile in place of pam_unix."""
    lines = []
    for line in auth_lines(name):
        words = split_pam_args(line)
        if words[2] == "pam_unix.so":
            line = " ".join([*words[:2], "pam_pwdfile.so", f"pwdfile={pwdfile}", *words[3:]])
        elif words[2] == "pam_python.so":
            line = localise(line, otp)
        lines.append(line)
    return lines


@pytest.mark.parametrize("name", PASSWORD_THEN_CODE)
def test_password_and_code_are_both_asked_and_decided_at_the_end(name):
    """No `@include common-auth` (it stops at a wrong password) and nothing that ends the stack early."""
    text = (SNIPPETS / name).read_text()
    assert not [line for line in text.splitlines() if line.strip().startswith("@include common-auth")]
    stack = [split_pam_args(line)[1:3] for line in auth_lines(name)]
    assert stack == [["required", "pam_unix.so"], ["required", "pam_python.so"]]
    assert "nodelay" not in auth_lines(name)[0]


@pytest.mark.parametrize("name", PASSWORD_THEN_CODE)
def test_a_wrong_password_still_gets_the_code_prompt(name, otp: OtpEnv, pam_service, tmp_path):
    secret = otp.add_user("alice")
    service = pam_service(shipped_stack(name, otp, pwdfile_with(tmp_path, "alice", "unix-pw")))
    prompt = PASSWORD_THEN_CODE[name]
    r = pamtester(service, "alice", ["unix-pw", totp(secret)])
    assert r.status == "PAM_SUCCESS", r.output
    assert r.output.index("Password: ") < r.output.index(prompt)
    failures = [pamtester(service, "alice", ["wrong-pw", totp(secret, 1)]),  # a right code does not help
                pamtester(service, "alice", ["unix-pw", wrong_totp(secret)])]
    for r in failures:
        assert r.status == "PAM_AUTH_ERR" and "Password: " in r.output and prompt in r.output, r.output
        assert r.seconds >= 0.95  # libpam's failure delay (2 s, randomised down to half) whichever factor failed


def test_pam_radius_auth_files():
    conf = [line.split() for line in (SNIPPETS / "pam_radius_auth.conf").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert conf and all(len(fields) == 3 and fields[2].isdigit() for fields in conf)
    auth = [line for line in (SNIPPETS / "sshd-pam-radius-auth").read_text().splitlines() if line.startswith("auth")]
    assert auth == ["auth required pam_radius_auth.so conf=/etc/pam_radius_auth.conf"]


def test_sshd_config_fragment():
    text = (SNIPPETS / "sshd_config.d-otp.conf").read_text()
    active = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert "UsePAM yes" in active and "KbdInteractiveAuthentication yes" in active
    assert "AuthenticationMethods keyboard-interactive" in active
    assert "# AuthenticationMethods publickey,keyboard-interactive" in text
