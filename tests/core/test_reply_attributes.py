"""Reply attributes (issue 19, item 4) in the store, the core and otp-admin: `group set/list/show/delete`, `user set
--group/--reply`, what a Decision grants, and the refusals (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

import pytest

from otpcore import oath
from otpcore.decision import Reason, Verdict
from otpcore.replies import combine
from otpcore.replyadmin import ReplyAdmin
from otpcore.store.sqlite import SqliteStore
from radiusd.replyattrs import REPLY_BUDGET, check_pairs
from tests.kit.tools import OTP_ADMIN

from .helpers import SEED20, Cli, Installation
from .test_cli_errors import check_failure
from .test_migrations import old_store

NOW = 1_700_000_000.0
STEP = oath.time_step(NOW)
DOOR = {"door": "radius", "client": "vpn"}
ADMINS = ["--reply", "Class=vpn-admins", "--reply", "Cisco-AVPair=ip:inacl#1=permit ip any any",
          "--reply", "Filter-Id=admins"]


def pairs_of(items: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(item["attribute"], item["value"]) for item in items]


def group_json(cli: Cli, name: str) -> dict:
    return json.loads(cli.ok("group", "show", name, "--json"))


@pytest.fixture
def grouped(cli_alice: Cli) -> Cli:
    """alice and bob; group vpn-admins (Class, Cisco-AVPair, Filter-Id) with alice in it."""
    cli_alice.ok("user", "add", "bob")
    cli_alice.ok("group", "set", "vpn-admins", *ADMINS)
    cli_alice.ok("user", "set", "alice", "--group", "vpn-admins")
    return cli_alice


# -- combining ---------------------------------------------------------------------------------------------------------


def test_the_users_pairs_follow_the_groups_and_replace_those_of_the_same_attribute() -> None:
    group = [("Class", "staff"), ("Cisco-AVPair", "a"), ("Cisco-AVPair", "b"), ("Tunnel-Type:1", "VLAN")]
    assert combine(group, []) == tuple(group)
    assert combine([], [("Filter-Id", "x")]) == (("Filter-Id", "x"),)
    assert combine(group, [("Cisco-AVPair", "c"), ("Tunnel-Type:2", "VLAN")]) == (
        ("Class", "staff"), ("Tunnel-Type:1", "VLAN"), ("Cisco-AVPair", "c"), ("Tunnel-Type:2", "VLAN"))


# -- otp-admin ---------------------------------------------------------------------------------------------------------


def test_group_set_replaces_the_whole_list(grouped: Cli) -> None:
    assert pairs_of(group_json(grouped, "vpn-admins")["attributes"]) == [
        ("Class", "vpn-admins"), ("Cisco-AVPair", "ip:inacl#1=permit ip any any"), ("Filter-Id", "admins")]
    out = grouped.ok("group", "set", "vpn-admins", "--reply", "session-timeout=3600",
                     "--reply", "service-type=framed-user")
    assert "2 reply attribute(s), 1 user(s)" in out
    shown = group_json(grouped, "vpn-admins")
    # replaced, not added to; names and VALUE names as the dictionary spells them; the users are kept
    assert pairs_of(shown["attributes"]) == [("Session-Timeout", "3600"), ("Service-Type", "Framed-User")]
    assert shown["users"] == ["alice"]
    grouped.ok("group", "set", "vpn-admins")  # no --reply: an empty list
    assert group_json(grouped, "vpn-admins")["attributes"] == []


def test_group_list_and_show(grouped: Cli) -> None:
    grouped.ok("group", "set", "empty")
    listed = json.loads(grouped.ok("group", "list", "--json"))
    assert [(g["name"], g["users"], len(g["attributes"])) for g in listed] == [("empty", [], 0),
                                                                              ("vpn-admins", ["alice"], 3)]
    table = grouped.ok("group", "list").splitlines()
    assert table[0].split() == ["NAME", "USERS", "ATTRIBUTES", "UPDATED"]
    assert table[2].split()[:3] == ["vpn-admins", "1", "3"]
    text = grouped.ok("group", "show", "vpn-admins")
    assert "  Cisco-AVPair = ip:inacl#1=permit ip any any\n" in text and "users: alice\n" in text


def test_user_set_and_show(grouped: Cli) -> None:
    out = grouped.ok("user", "set", "alice", "--reply", "Filter-Id=alice", "--reply", "Idle-Timeout=600")
    assert "an Access-Accept carries 4 reply attribute(s)" in out
    shown = json.loads(grouped.ok("user", "show", "alice", "--json"))
    assert shown["group"] == "vpn-admins"  # kept: only the own list was given
    assert pairs_of(shown["reply"]) == [("Filter-Id", "alice"), ("Idle-Timeout", "600")]
    assert pairs_of(shown["accept_attributes"]) == [
        ("Class", "vpn-admins"), ("Cisco-AVPair", "ip:inacl#1=permit ip any any"), ("Filter-Id", "alice"),
        ("Idle-Timeout", "600")]
    assert "  Idle-Timeout = 600\n" in grouped.ok("user", "show", "alice")
    grouped.ok("user", "set", "alice", "--clear-group")
    shown = json.loads(grouped.ok("user", "show", "alice", "--json"))
    assert shown["group"] is None and pairs_of(shown["accept_attributes"]) == pairs_of(shown["reply"])
    grouped.ok("user", "set", "alice", "--clear-reply")
    shown = json.loads(grouped.ok("user", "show", "alice", "--json"))
    assert shown["reply"] == [] and shown["accept_attributes"] == []
    users = {u["name"]: u["group"] for u in json.loads(grouped.ok("user", "list", "--json"))}
    assert users == {"alice": None, "bob": None}


def test_every_change_is_audited(grouped: Cli) -> None:
    grouped.ok("user", "set", "bob", "--group", "vpn-admins", "--reply", "Filter-Id=bob")
    grouped.ok("user", "set", "bob", "--clear-group", "--clear-reply")
    grouped.ok("user", "set", "alice", "--clear-group")
    grouped.ok("group", "delete", "vpn-admins")
    rows = [(r["user"], r["reason"]) for r in json.loads(grouped.ok("audit", "--json"))
            if r["reason"] not in ("user_added", "password_set")]
    assert rows == [(None, "group_set:vpn-admins"), ("alice", "group_joined:vpn-admins"),
                    ("bob", "group_joined:vpn-admins"), ("bob", "reply_set"), ("bob", "group_left:vpn-admins"),
                    ("bob", "reply_cleared"), ("alice", "group_left:vpn-admins"), (None, "group_deleted:vpn-admins")]
    assert all(r["door"] == "admin" for r in json.loads(grouped.ok("audit", "--json")))


REFUSED_WITH_2 = [
    (["group", "set", "g", "--reply", "No-Such-Attribute=1"], "unknown attribute 'No-Such-Attribute'"),
    (["group", "set", "g", "--reply", "Session-Timeout=soon"], "Session-Timeout: not a number"),
    (["group", "set", "g", "--reply", "Session-Timeout=4294967296"], "out of range"),
    (["group", "set", "g", "--reply", "Service-Type=Superuser"], "Service-Type: not a number or one of"),
    (["group", "set", "g", "--reply", "Framed-IP-Address=10.0.0.256"], "not a valid ipaddr"),
    (["group", "set", "g", "--reply", "Framed-IPv6-Prefix=10.0.0.0/8"], "not a valid ipv6prefix"),
    (["group", "set", "g", "--reply", "Class=0x12zz"], "not hex digits"),
    (["group", "set", "g", "--reply", "Filter-Id=" + "x" * 254], "254 octets, at most 253"),
    (["group", "set", "g", "--reply", "Cisco-AVPair=" + "x" * 248], "248 octets, at most 247"),
    (["group", "set", "g", "--reply", "Filter-Id:1=x"], "takes no tag"),
    (["group", "set", "g", "--reply", "Tunnel-Type:32=VLAN"], "a tag is a number from 0 to 31"),
    (["group", "set", "g", "--reply", "Tunnel-Password=secret"], "hidden with each request's authenticator"),
    (["group", "set", "g", "--reply", "MS-MPPE-Send-Key=0x00"], "hidden with each request's authenticator"),
    (["group", "set", "g", "--reply", "Message-Authenticator=0x00"], "set by the server itself"),
    (["group", "set", "g", "--reply", "Reply-Message=hi"], "set by the server itself"),
    (["group", "set", "g", "--reply", "Class"], "expected ATTRIBUTE=VALUE"),
    (["group", "set", "g", "--reply", "Class="], "the value is empty"),
    (["group", "set", "g", *[arg for _ in range(13) for arg in ("--reply", "Cisco-AVPair=" + "y" * 240)]],
     "the reply attributes take 3224 octets, more than the 3000 an Access-Accept has room for"),
    (["group", "set", "bad group"], "invalid group name"),
    (["user", "set", "alice", "--reply", "No-Such-Attribute=1"], "unknown attribute"),
    (["user", "set", "alice", "--group", "no group"], "invalid group name"),
    # a refused reply attribute leaves the e-mail address given with it unwritten too
    (["user", "set", "alice", "--email", "alice@example.org", "--reply", "Idle-Timeout=-1"], "out of range"),
    (["user", "set", "alice"], "nothing to change"),
    (["user", "set", "alice", "--group", "vpn-admins", "--clear-group"], "not allowed with argument"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED_WITH_2)
def test_bad_attributes_and_values_are_refused_with_one_line_and_nothing_written(grouped: Cli, args: list[str],
                                                                                 message: str) -> None:
    assert message in check_failure(grouped, args, 2)


def test_refused_operations_write_nothing(grouped: Cli) -> None:
    assert "no such group: nogroup" in check_failure(grouped, ["user", "set", "bob", "--group", "nogroup"], 1)
    assert "no such user" in check_failure(grouped, ["user", "set", "carol", "--group", "vpn-admins"], 1)
    assert "no such group" in check_failure(grouped, ["group", "show", "nogroup"], 1)
    assert "has 1 member(s) (alice)" in check_failure(grouped, ["group", "delete", "vpn-admins"], 1)


def test_a_users_list_and_its_groups_must_fit_in_one_accept_together(grouped: Cli) -> None:
    avpairs = [arg for i in range(7) for arg in ("--reply", f"Cisco-AVPair=ip:inacl#{i}=" + "z" * 230)]  # 1743 octets
    filters = [arg for i in range(7) for arg in ("--reply", f"Filter-Id={i}" + "f" * 239)]  # 1694 octets
    grouped.ok("user", "set", "bob", *avpairs)  # each list fits alone
    grouped.ok("group", "set", "big", *filters)
    line = check_failure(grouped, ["user", "set", "bob", "--group", "big"], 2)
    assert f"take 3437 octets, more than the {REPLY_BUDGET} an Access-Accept has room for" in line
    grouped.ok("user", "set", "alice", *avpairs)  # with vpn-admins' three short ones: fits
    line = check_failure(grouped, ["group", "set", "vpn-admins", *filters], 2)
    assert line.startswith("otp-admin: error: with the reply attributes of user alice: the reply attributes take 3437")
    grouped.ok("group", "set", "vpn-admins", *avpairs)  # alice's own Cisco-AVPairs replace these: 1743 in all


# -- the core: what a Decision grants ----------------------------------------------------------------------------------


@pytest.fixture
def members(inst: Installation) -> Installation:
    """alice (group staff, Filter-Id of her own), bob (no attributes), both with a TOTP token on SEED20 and password
    b"pw"; carol (group staff, no token)."""
    for name in ("alice", "bob", "carol"):
        inst.add_user(name, b"pw")
    for name in ("alice", "bob"):
        inst.add_token(name, type="totp", secret=SEED20)
    with inst.admin() as admin:
        replies = ReplyAdmin(admin.store, check_pairs)
        replies.set_group("staff", [("Class", "staff"), ("Filter-Id", "staff-acl")], now=0)
        replies.set_user("alice", group="staff", pairs=[("Filter-Id", "alice-acl")], now=0)
        replies.set_user("carol", group="staff", now=0)
    return inst


def test_an_accept_grants_the_groups_and_the_users_attributes(members: Installation) -> None:
    v = members.verifier()
    decision = v.verify_code("alice", oath.hotp(SEED20, STEP), now=NOW, **DOOR)
    assert decision.verdict is Verdict.ACCEPT
    assert decision.reply == (("Class", "staff"), ("Filter-Id", "alice-acl"))
    assert v.verify_code("bob", oath.hotp(SEED20, STEP), now=NOW, **DOOR).reply == ()
    refused = v.verify_code("alice", oath.hotp(SEED20, STEP), now=NOW, **DOOR)  # a replay
    assert (refused.verdict, refused.reply) == (Verdict.REJECT, ())


def test_the_second_leg_of_a_challenge_and_a_tokenless_accept_grant_them_too(members: Installation) -> None:
    v = members.verifier()
    challenge = v.login("alice", b"pw", first_factor="store", now=NOW, **DOOR)
    assert (challenge.verdict, challenge.reply) == (Verdict.CHALLENGE, ())
    assert challenge.state is not None
    accept = v.answer_challenge(challenge.state, "alice", oath.hotp(SEED20, STEP).encode(), now=NOW, **DOOR)
    assert accept.reply == (("Class", "staff"), ("Filter-Id", "alice-acl"))
    tokenless = members.verifier(no_token="accept")
    decision = tokenless.login("carol", b"pw", first_factor="store", now=NOW, **DOOR)
    assert (decision.verdict, decision.reason) == (Verdict.ACCEPT, Reason.NO_TOKEN_ACCEPTED)
    assert decision.reply == (("Class", "staff"), ("Filter-Id", "staff-acl"))


def test_a_schema_7_store_gains_the_groups_and_its_users_have_none(tmp_path: Path) -> None:
    path = tmp_path / "otp.sqlite"
    conn = old_store(path, 7)
    conn.execute("INSERT INTO users (id, name, failures, created) VALUES (1, 'alice', 0, 0)")
    conn.close()
    store = SqliteStore.open(path)
    try:
        row = store.require_user("alice")
        assert (row.reply_group, row.reply) == (None, None)
        with store.transaction():
            store.set_reply_group("staff", '[["Class", "staff"]]', 1.0)
            store.set_user_reply(row.id, group="staff", attributes=None)
        assert store.reply_group_members("staff") == ["alice"]
        with pytest.raises(Exception, match="FOREIGN KEY"), store.transaction():  # a group with users stays
            store.delete_reply_group("staff")
    finally:
        store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT name FROM reply_groups").fetchall() == [("staff",)]
    check.close()


# -- the README's examples ---------------------------------------------------------------------------------------------


def test_the_readmes_examples_run_as_written(cli_alice: Cli) -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("## Authorisation: reply attributes")
    section = text[start:text.index("\n## ", start + 1)]
    (script,) = re.findall(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    cli_alice.ok("user", "add", "bob")
    env = {**cli_alice.env, "OTP_CONFIG": str(cli_alice.config), "PATH": f"{OTP_ADMIN.parent}:/usr/bin:/bin"}
    out = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], env=env, capture_output=True, text=True,
                         timeout=120)
    assert (out.returncode, out.stderr) == (0, ""), out.stdout
    shown = json.loads(cli_alice.ok("user", "show", "bob", "--json"))
    assert pairs_of(shown["accept_attributes"]) == [  # as the README says bob's Accept carries
        ("Class", "vpn-admins"), ("Cisco-AVPair", "ip:inacl#1=permit ip any any"), ("Filter-Id", "bob-acl"),
        ("Session-Timeout", "28800")]
    commands = re.findall(r"`(otp-admin group set [^`]+)`", section)
    assert len(commands) == 3
    for command in commands:  # the vendors' examples are accepted too, and every --reply the section shows
        cli_alice.ok(*shlex.split(command)[1:])
    shown_replies = re.findall(r"--reply '([^']+)'", section)
    assert len(shown_replies) == 15
    cli_alice.ok("group", "set", "every-example", *[arg for reply in shown_replies for arg in ("--reply", reply)])
