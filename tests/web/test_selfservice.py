"""The self-service library (otpcore.selfservice) on a real store: enrolment proved by its first code, invites,
and `otp-admin user invite`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from otpcore.admin import Admin, UserSpec
from otpcore.config import load_config
from otpcore.selfservice import SelfService
from otpcore.service import Verifier
from otpcore.store import SCHEMA_VERSION
from tests.kit.codes import OathTool, oathtool
from tests.kit.config import config_text
from tests.kit.tools import otp_admin

SECRET = bytes(range(20))
NOW = 1_800_000_000.0


def installation(tmp_path: Path) -> tuple[Path, Admin]:
    path = tmp_path / "otp.toml"
    path.write_text(config_text(policy={"max_failures": 3, "lockout_seconds": 0}))
    admin = Admin(load_config(path))
    admin.init()
    admin.add_user(UserSpec("alice", password=b"pw"), now=NOW)
    return path, admin


def service(admin: Admin) -> SelfService:
    return SelfService(admin.store, admin.sealer, admin.config.policy)


def test_the_store_has_the_portal_tables(tmp_path: Path) -> None:
    _, admin = installation(tmp_path)
    admin.close()
    with sqlite3.connect(tmp_path / "otp.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 10
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"portal_sessions", "invites"} <= names


def test_a_token_is_made_only_by_its_first_code_and_that_code_is_used(tmp_path: Path) -> None:
    path, admin = installation(tmp_path)
    tool: OathTool = oathtool()
    code = tool.totp(SECRET, NOW)
    selfservice = service(admin)
    assert selfservice.enrol("alice", "totp", SECRET, "000000" if code != "000000" else "111111", issuer=None,
                             first=True, directory_user=False, now=NOW, client="t") is None
    assert admin.tokens("alice") == []
    enrolled = selfservice.enrol("alice", "totp", SECRET, code, issuer="Example", first=True, directory_user=False,
                                 now=NOW, client="t")
    assert enrolled is not None and enrolled.step == int(NOW // 30)
    assert selfservice.enrol("alice", "totp", SECRET, code, issuer=None, first=True, directory_user=False, now=NOW,
                             client="t") is None  # a first token only: she has one now
    admin.close()
    verifier = Verifier.open(load_config(path))
    try:  # the enrolment's code is used up for every door
        assert verifier.verify_code("alice", code, door="radius", client="nas", now=NOW).reason == "replay"
        assert verifier.verify_code("alice", tool.totp(SECRET, NOW + 30), door="radius", client="nas",
                                    now=NOW + 30).accepted
    finally:
        verifier.close()


def test_invites_are_single_use_expire_and_count_wrong_tries(tmp_path: Path) -> None:
    _, admin = installation(tmp_path)
    selfservice = service(admin)
    code = selfservice.issue_invite("alice", hours=1, now=NOW)
    assert len(code) == 11 and code[5] == "-"
    assert not selfservice.redeem_invite("alice", "AAAAA-AAAAA", now=NOW, client="t")
    assert selfservice.redeem_invite("alice", code.lower().replace("-", " "), now=NOW, client="t")
    assert not selfservice.redeem_invite("alice", code, now=NOW, client="t")  # used
    late = selfservice.issue_invite("alice", hours=1, now=NOW)
    assert not selfservice.redeem_invite("alice", late, now=NOW + 3601, client="t")
    assert admin.user("alice").locked_at is not None  # three wrong tries (max_failures 3): locked, as for codes
    reasons = [r.reason for r in admin.store.audit_rows(user="alice")]
    assert reasons[-6:] == ["invite_issued", "invite_refused", "invite_used", "invite_refused", "invite_issued",
                            "invite_expired"]
    admin.close()


def test_otp_admin_user_invite(tmp_path: Path) -> None:
    path, admin = installation(tmp_path)
    admin.close()
    out = otp_admin(path, "user", "invite", "alice")
    assert out.returncode == 0 and "single use, valid 72 hours" in out.stdout
    assert otp_admin(path, "user", "invite", "nobody").returncode == 1
    no_address = otp_admin(path, "user", "invite", "alice", "--send")
    assert no_address.returncode == 2 and "no e-mail address" in no_address.stderr
