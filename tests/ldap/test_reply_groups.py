"""Reply groups from the directory (issue 19, item 4, with issue 17's directory): [ldap.reply_groups] maps group DNs
to reply groups; each password check by the directory decides the user's group, so its Accept (in the same request,
after a challenge, through a real otp-radiusd) carries that group's attributes, and a user the directory does not
list in any of them carries none."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE
from otpcore import oath
from otpcore.config import parse_config
from otpcore.decision import Reason, Verdict
from otpcore.errors import ConfigError
from otpcore.firstfactor import ldap as ldap_module
from otpcore.ldap_config import dn_key
from otpcore.store import open_store
from tests.kit.radius_client import UdpClient, build_request
from tests.kit.radiusd import RadiusServer
from tests.kit.slapd import Slapd
from tests.kit.tools import otp_admin

from .kit import SEED, Site
from .test_config import table

CLASS = 25  # RFC 2865 Class


def reply_groups(mapping: dict[str, str]) -> str:
    return "[ldap.reply_groups]\n" + "".join(f"{json.dumps(dn)} = {json.dumps(g)}\n" for dn, g in mapping.items())


def respelled(dn: str) -> str:
    """The same DN as an admin might type it: other case, spaces after the commas."""
    return ", ".join(part.upper() for part in dn.split(","))


def group_set(site: Site, name: str, *pairs: str) -> None:
    out = otp_admin(site.config_path, "group", "set", name, *(a for p in pairs for a in ("--reply", p)))
    assert out.returncode == 0, out.stderr


def reply_group_of(site: Site, user: str) -> str | None:
    store = open_store(site.config.store)
    try:
        row = store.user(user)
        assert row is not None
        return row.reply_group
    finally:
        store.close()


@pytest.fixture
def grouped(make_site: Callable[..., Site], directory: Slapd) -> tuple[Site, Slapd]:
    """A site whose [ldap.reply_groups] maps the directory's group (alice is a member, bob is not) to "vpn", and a
    group "others" bob is put in by hand; alice and bob have a TOTP token each."""
    site = make_site(directory, extra=reply_groups({respelled(directory.layout.group_dn): "vpn"}))
    group_set(site, "vpn", "Class=vpn-users", "Filter-Id=vpn-acl")
    group_set(site, "others", "Class=others")
    for user in ("alice", "bob"):
        site.add_token(user)
    out = otp_admin(site.config_path, "user", "set", "bob", "--group", "others")
    assert out.returncode == 0, out.stderr
    return site, directory


def test_the_table_is_checked_at_load_time(tmp_path: Path):
    ldap = parse_config({"ldap": table(tmp_path, reply_groups={"cn=VPN,dc=example,dc=org": "vpn"})},
                        base=tmp_path).ldap
    assert ldap is not None and ldap.reply_groups == (("cn=VPN,dc=example,dc=org", "vpn"),)
    assert ldap.group_attribute == "memberOf"
    for bad, error in [({"vpn-users": "vpn"}, "ldap.reply_groups: not a DN: 'vpn-users'"),
                       ({"cn=vpn,dc=x,": "vpn"}, "ldap.reply_groups: not a DN: 'cn=vpn,dc=x,'"),
                       ({"2.5.4.3=vpn,dc=x": "vpn"}, "ldap.reply_groups: not a DN: '2.5.4.3=vpn,dc=x'"),
                       ({"cn=vpn,dc=x": "vpn", "CN=VPN, DC=X": "other"},
                        "ldap.reply_groups: 'CN=VPN, DC=X' names a group listed before"),
                       ({"cn=vpn,dc=x": "no spaces"}, "ldap.reply_groups.'cn=vpn,dc=x': invalid group name"),
                       ({"cn=vpn,dc=x": 3}, "ldap.reply_groups.'cn=vpn,dc=x': must be the name of a reply group")]:
        with pytest.raises(ConfigError) as raised:
            parse_config({"ldap": table(tmp_path, reply_groups=bad)}, base=tmp_path)
        assert str(raised.value).startswith(error)
    with pytest.raises(ConfigError, match=r"^ldap\.reply_groups: must be a table"):
        parse_config({"ldap": table(tmp_path, reply_groups=["cn=vpn,dc=x"])}, base=tmp_path)


def test_the_directory_decides_the_group_at_each_password_check(grouped: tuple[Site, Slapd]):
    site, directory = grouped
    now = time.time()
    alice = site.login("alice", directory.user("alice").password + oath.totp(SEED, now), now=now)
    assert (alice.verdict, alice.reply) == (Verdict.ACCEPT, (("Class", "vpn-users"), ("Filter-Id", "vpn-acl")))
    assert reply_group_of(site, "alice") == "vpn"
    # bob's group was set by hand; the directory lists him in none of the table's groups: he is given none
    bob = site.login("bob", directory.user("bob").password + oath.totp(SEED, now), now=now)
    assert (bob.verdict, bob.reply) == (Verdict.ACCEPT, ())
    assert reply_group_of(site, "bob") is None


def test_the_accept_of_the_same_login_carries_the_group_just_written(make_site: Callable[..., Site],
                                                                      directory: Slapd):
    """Users without a token accepted by policy (no_token = "accept"): the accept comes from the row the directory's
    group was just written on, in both directions."""
    site = make_site(directory, extra=reply_groups({directory.layout.group_dn: "vpn"}),
                     policy={"no_token": "accept"})
    group_set(site, "vpn", "Class=vpn-users")
    group_set(site, "others", "Class=others")
    for name, group in (("alice", "others"), ("bob", "vpn")):  # alice is a member, bob is not
        for args in (["user", "add", name], ["user", "set", name, "--group", group]):
            out = otp_admin(site.config_path, *args)
            assert out.returncode == 0, out.stderr
    alice = site.login("alice", directory.user("alice").password)
    assert (alice.verdict, alice.reason, alice.reply) == (Verdict.ACCEPT, Reason.NO_TOKEN_ACCEPTED,
                                                          (("Class", "vpn-users"),))
    bob = site.login("bob", directory.user("bob").password)
    assert (bob.verdict, bob.reply) == (Verdict.ACCEPT, ())
    assert (reply_group_of(site, "alice"), reply_group_of(site, "bob")) == ("vpn", None)


def test_dns_are_compared_as_dns_and_no_spelling_reads_as_another():
    assert dn_key("CN=VPN Users , OU=Groups,DC=x") == dn_key("cn=vpn\\20users,ou=groups,dc=x") \
        == dn_key("cn=VPN\\ Users,ou=groups,dc=X")
    assert dn_key("cn=a\\2C b,dc=x") == dn_key("cn=a\\, b,dc=x") != dn_key("cn=a,cn=b,dc=x")
    # a multi-valued RDN is one RDN: not the group one level below it
    assert dn_key("cn=vpn+ou=groups,dc=x") != dn_key("cn=vpn,ou=groups,dc=x")
    assert dn_key("cn=vpn+ou=groups,dc=x") == dn_key("ou=groups+cn=vpn,dc=x")
    assert dn_key("cn=a\\\\,dc=x") != dn_key("cn=a,dc=x")
    for bad in ("vpn", "cn=vpn,dc=x,", " =x", "cn=vpn,d c=x"):
        assert dn_key(bad) is None, bad


def test_a_user_s_groups_are_read_only_after_the_bind(grouped: tuple[Site, Slapd], monkeypatch: pytest.MonkeyPatch):
    site, directory = grouped
    site.verifier().directory()  # made: the table's own DNs are parsed
    parsed: list[str] = []
    monkeypatch.setattr(ldap_module, "dn_key", lambda dn: parsed.append(dn) or dn_key(dn))
    now = time.time()
    assert site.login("alice", "wrong" + oath.totp(SEED, now), now=now).reason is Reason.WRONG_PASSWORD
    assert parsed == []
    assert site.login("alice", directory.user("alice").password + oath.totp(SEED, now), now=now).accepted
    assert parsed


def test_a_wrong_password_changes_no_group(grouped: tuple[Site, Slapd]):
    site, _ = grouped
    now = time.time()
    assert site.login("bob", "wrong" + oath.totp(SEED, now), now=now).reason is Reason.WRONG_PASSWORD
    assert reply_group_of(site, "bob") == "others"


def test_a_group_missing_from_the_store_is_logged_and_grants_nothing(
        make_site: Callable[..., Site], openldap: Slapd, caplog: pytest.LogCaptureFixture):
    site = make_site(openldap, extra=reply_groups({openldap.layout.group_dn: "not-made"}))
    site.add_token("alice")
    now = time.time()
    with caplog.at_level(logging.WARNING, logger="otpcore.replies"):
        decision = site.login("alice", openldap.user("alice").password + oath.totp(SEED, now), now=now)
    assert (decision.verdict, decision.reply) == (Verdict.ACCEPT, ())
    assert "the reply group not-made, which does not exist" in caplog.text
    assert openldap.user("alice").password not in caplog.text


def test_radius_accepts_carry_the_directory_group_also_after_a_challenge(
        radius_server: Callable[..., RadiusServer], directory: Slapd):
    server = radius_server(directory, extra=reply_groups({directory.layout.group_dn: "vpn"}))
    for args in (["group", "set", "vpn", "--reply", "Class=vpn-users"],
                 ["token", "add", "alice", "--type", "totp", "--secret", oath.encode_base32(SEED), "--qr", "none"],
                 ["token", "add", "bob", "--type", "totp", "--secret", oath.encode_base32(SEED), "--qr", "none"]):
        out = server.otp_admin(*args)
        assert out.returncode == 0, out.stderr
    server.start()
    alice, bob = (directory.user(name).password.encode() for name in ("alice", "bob"))
    with UdpClient(server.address) as nas:
        now = time.time()
        accept = nas.ask(build_request("alice", alice + oath.totp(SEED, now).encode()))
        assert (accept.code, accept.get(CLASS)) == (ACCESS_ACCEPT, [b"vpn-users"])
        challenge = nas.ask(build_request("alice", alice))
        assert challenge.code == ACCESS_CHALLENGE and challenge.get(CLASS) == []
        answer = nas.ask(build_request("alice", oath.totp(SEED, now + 30).encode(), state=challenge.state))
        assert (answer.code, answer.get(CLASS)) == (ACCESS_ACCEPT, [b"vpn-users"])
        other = nas.ask(build_request("bob", bob + oath.totp(SEED, now).encode()))
        assert (other.code, other.get(CLASS)) == (ACCESS_ACCEPT, [])
    assert [d["reason"] for d in server.decisions("alice")] == ["ok", "challenge", "ok"]
