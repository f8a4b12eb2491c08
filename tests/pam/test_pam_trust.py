"""Local mode uses only a config, store and key that nobody but root (or the service user) could have written, and
never a config the environment names: pamtester, as sudo or su would, keeps its caller's environment.

The test stores live under pytest's tmp_path: root-owned 0700 directories under the sticky /tmp, a trusted chain.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from tests.kit.codes import totp_after as totp  # the PAM tests count in time steps from now
from tests.kit.pamtester import log_lines, pamtester
from tests.kit.ports import free_udp_port

from .pamkit import OtpEnv, module_line

NOBODY = pwd.getpwnam("nobody").pw_uid


def user_made_store(folder: Path) -> tuple[OtpEnv, str]:
    """What a local user makes with otp-admin in their own folder: config, store, key and a token they hold."""
    folder.mkdir()
    env = OtpEnv(folder, auth_port=free_udp_port(), acct_port=free_udp_port())
    env.write_config()
    env.admin("init")
    secret = env.add_user("alice")
    for path in (folder, *folder.iterdir()):
        os.chown(path, NOBODY, NOBODY)
    return env, secret


def test_otp_config_from_the_environment_is_never_read(tmp_path: Path, pam_service):
    evil, secret = user_made_store(tmp_path / "evil")
    service = pam_service([module_line("local")])  # no config=: the default, /etc/otp/otp.toml
    environment = {**os.environ, "OTP_CONFIG": str(evil.config)}
    r = pamtester(service, "alice", [totp(secret)], env=environment, log_to_stderr=True)
    assert r.status != "PAM_SUCCESS", r.output
    assert not [row for row in evil.audit("alice") if row["door"] == "pam"]  # that store was never opened
    assert str(evil.root) not in r.output


def test_a_user_owned_config_named_on_the_pam_line_is_refused(tmp_path: Path, pam_service):
    evil, secret = user_made_store(tmp_path / "evil")
    service = pam_service([module_line("local", config=evil.config)])
    r = pamtester(service, "alice", [totp(secret)], log_to_stderr=True)
    assert r.status == "PAM_AUTHINFO_UNAVAIL", r.output
    assert "One-time password" not in r.output
    [line] = log_lines(r)
    assert f"config file {evil.config}: owned by uid {NOBODY}, not by root" in line


def tamper_config(otp: OtpEnv) -> tuple[Path, str]:
    otp.config.chmod(0o664)
    return otp.config, "writable by group (mode 664)"


def tamper_store(otp: OtpEnv) -> tuple[Path, str]:
    os.chown(otp.root / "otp.sqlite", NOBODY, -1)
    return otp.root / "otp.sqlite", f"owned by uid {NOBODY}, not by root"


def tamper_key(otp: OtpEnv) -> tuple[Path, str]:
    os.chown(otp.root / "otp.key", NOBODY, -1)
    return otp.root / "otp.key", f"owned by uid {NOBODY}, not by root"


def tamper_folder(otp: OtpEnv) -> tuple[Path, str]:
    otp.root.chmod(0o777)  # anyone could swap the files: no sticky bit
    return otp.root, "writable by group and others (mode 777)"


@pytest.mark.parametrize("tamper", [tamper_config, tamper_store, tamper_key, tamper_folder])
def test_files_others_could_write_are_refused_and_named_once(otp: OtpEnv, pam_service, tamper):
    secret = otp.add_user("alice")
    service = pam_service([module_line("local", config=otp.config)])
    path, why = tamper(otp)
    r = pamtester(service, "alice", [totp(secret)], log_to_stderr=True)
    assert r.status == "PAM_AUTHINFO_UNAVAIL", r.output
    [line] = log_lines(r)
    assert f" {path}" in line and why in line, line
    assert "authentication service unavailable" in line


def test_a_sticky_world_writable_folder_is_fine(otp: OtpEnv, pam_service):
    secret = otp.add_user("alice")
    otp.root.chmod(0o1777)  # as /tmp: nobody can rename another's file in it
    service = pam_service([module_line("local", config=otp.config)])
    r = pamtester(service, "alice", [totp(secret)], log_to_stderr=True)
    assert r.status == "PAM_SUCCESS", r.output
    assert log_lines(r) == []
