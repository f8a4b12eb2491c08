"""The LDAP first factor against a real slapd (OpenLDAP and AD-like): search with the service account, bind as the
entry found, the group, the traps (empty password, filter metacharacters, two entries), and what it costs the
directory (round trips, pooled connections)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from otpcore import oath
from otpcore.decision import Reason, Verdict
from otpcore.firstfactor.ldap import Directory
from tests.kit.slapd import Slapd

from .kit import SEED, Site, SlapdLog


def code(now: float) -> str:
    return oath.totp(SEED, now)


@pytest.fixture
def alice_site(make_site: Callable[..., Site], directory: Slapd) -> Site:
    """An installation on `directory` where alice has a TOTP token (added by name: the store learns of her then)."""
    site = make_site(directory)
    site.add_token("alice")
    return site


def test_right_password_and_code_accepted_wrong_password_refused(alice_site: Site, directory: Slapd):
    now = time.time()
    password = directory.user("alice").password
    assert alice_site.login("alice", password + code(now), now=now).verdict is Verdict.ACCEPT
    wrong = alice_site.login("alice", "not-" + password + code(now + 30), now=now + 30)
    assert (wrong.verdict, wrong.reason) == (Verdict.REJECT, Reason.WRONG_PASSWORD)
    # bob's password is not alice's
    other = alice_site.login("alice", directory.user("bob").password + code(now + 60), now=now + 60)
    assert other.reason is Reason.WRONG_PASSWORD


def test_password_alone_gives_the_challenge(alice_site: Site, directory: Slapd):
    decision = alice_site.login("alice", directory.user("alice").password)
    assert (decision.verdict, decision.reason) == (Verdict.CHALLENGE, Reason.CHALLENGE_SENT)


def test_an_empty_password_never_succeeds(make_site: Callable[..., Site], ad: Slapd):
    """The AD-like flavour accepts a DN with an empty password (an anonymous bind, as AD does): it must never be
    sent, whether the entry is empty or only the code was typed."""
    site = make_site(ad)
    site.add_token("alice")
    now = time.time()
    assert site.login("alice", code(now), now=now).reason is Reason.WRONG_PASSWORD
    assert site.login("alice", "", now=now).verdict is Verdict.REJECT
    directory = Directory(site.config.ldap)
    assert directory.authenticate("alice", "") is Reason.WRONG_PASSWORD
    assert directory.authenticate("alice", b"") is Reason.WRONG_PASSWORD
    directory.close()


@pytest.mark.parametrize("name", ["*", "a*", "*lice", "alice)(|(uid=*", "alice\\", "alice\0", "(alice)", "al\\2a",
                                  "alice\udcff"])
def test_filter_metacharacters_in_names_match_nobody(make_site: Callable[..., Site], directory: Slapd, name: str):
    site = make_site(directory)
    directory_ = Directory(site.config.ldap)
    try:
        assert directory_.find(name) is None
        assert directory_.authenticate(name, directory.user("alice").password) is Reason.UNKNOWN_USER
    finally:
        directory_.close()


def test_two_matching_entries_are_refused(make_site: Callable[..., Site], fresh: Slapd,
                                          caplog: pytest.LogCaptureFixture):
    second = f"cn=Another Alice,{fresh.layout.base_dn}"
    if fresh.layout.flavour == "ad":
        fresh.add(f"dn: {second}\nobjectClass: inetOrgPerson\nobjectClass: user\ncn: Another Alice\nsn: A\n"
                  "sAMAccountName: alice\nuserPassword: second-Password-1\n")
    else:
        fresh.add(f"dn: {second}\nobjectClass: inetOrgPerson\ncn: Another Alice\nsn: A\nuid: alice\n"
                  "userPassword: second-Password-1\n")
    site = make_site(fresh)
    directory = Directory(site.config.ldap)
    with caplog.at_level(logging.WARNING, "otpcore.ldap"):
        for password in (fresh.user("alice").password, "second-Password-1"):
            assert directory.authenticate("alice", password) is Reason.UNKNOWN_USER
    directory.close()
    assert "matches more than one entry for alice" in caplog.text


def test_only_members_of_the_group(make_site: Callable[..., Site], directory: Slapd):
    site = make_site(directory, group_dn=directory.layout.group_dn)
    directory_ = Directory(site.config.ldap)
    assert directory_.authenticate("alice", directory.user("alice").password) is Reason.OK
    assert directory_.authenticate("bob", directory.user("bob").password) is Reason.NOT_IN_GROUP
    assert directory_.authenticate("bob", "wrong") is Reason.WRONG_PASSWORD  # the group is asked after the bind
    directory_.close()
    site.add_token("bob")
    now = time.time()
    refused = site.login("bob", directory.user("bob").password + code(now), now=now)
    assert (refused.verdict, refused.reason) == (Verdict.REJECT, Reason.NOT_IN_GROUP)


def test_active_directory_names(make_site: Callable[..., Site], ad: Slapd):
    """sAMAccountName (case-insensitive, as in AD), and userPrincipalName with a filter of the admin's choosing."""
    alice = ad.user("alice")
    by_sam = Directory(make_site(ad, user_filter="(&(objectClass=user)(sAMAccountName={user}))").config.ldap)
    assert by_sam.authenticate("ALICE", alice.password) is Reason.OK
    entry = by_sam.find("alice")
    assert entry is not None and (entry.email, entry.phone) == (alice.mail, alice.mobile)
    by_sam.close()
    assert alice.principal is not None
    either = "(&(objectClass=user)(|(sAMAccountName={user})(userPrincipalName={user})))"
    by_upn = Directory(make_site(ad, user_filter=either).config.ldap)
    assert by_upn.authenticate(alice.principal, alice.password) is Reason.OK
    assert by_upn.authenticate("alice", alice.password) is Reason.OK
    assert by_upn.authenticate(alice.principal, "wrong") is Reason.WRONG_PASSWORD
    by_upn.close()


def test_every_name_costs_the_same_round_trips(make_site: Callable[..., Site], directory: Slapd):
    """A name the directory does not have is answered by a search that matches nothing in place of the bind: the
    same number of operations as a wrong password of a real user, on the same pooled connections."""
    directory_ = Directory(make_site(directory).config.ldap)
    assert directory_.authenticate("bob", "warm-up") is Reason.WRONG_PASSWORD  # opens both connections
    costs = {}
    for name in ("alice", "nobody-here"):
        log = SlapdLog(directory)
        directory_.authenticate(name, "wrong-password")
        costs[name] = log.count()
    directory_.close()
    assert costs["alice"]["connections"] == costs["nobody-here"]["connections"] == 0
    alice, nobody = costs["alice"], costs["nobody-here"]
    assert (alice["binds"], alice["searches"]) == (1, 1)
    assert (nobody["binds"], nobody["searches"]) == (0, 2)


def test_connections_are_reused_and_the_service_account_binds_once(make_site: Callable[..., Site],
                                                                    directory: Slapd):
    site = make_site(directory)
    site.add_token("alice")
    log = SlapdLog(directory)
    now = time.time()
    for step in range(4):
        t = now + 30 * step
        assert site.login("alice", directory.user("alice").password + code(t), now=t).verdict is Verdict.ACCEPT
    assert site.login("bob", "wrong", now=now).verdict is Verdict.REJECT
    counts = log.count()
    assert counts["connections"] == 2, log.since()  # the service account's, and the one users bind on
    assert log.binds_as(directory.layout.service_dn) == 1
    assert counts["binds"] == 1 + 5


def test_a_connection_the_server_closed_is_reopened_on_the_same_url(make_site: Callable[..., Site],
                                                                     directory: Slapd):
    """A pooled connection dropped meanwhile (idle timeout of the server, a restart): reconnected, not failed
    over, and the check answered."""
    site = make_site(directory)
    directory_ = Directory(site.config.ldap)
    assert directory_.authenticate("alice", directory.user("alice").password) is Reason.OK
    session = directory_._session
    assert session is not None
    session.service.socket.close()
    session.binder.socket.close()
    assert directory_.authenticate("alice", directory.user("alice").password) is Reason.OK
    assert directory_._session is not None and directory_._session is not session
    assert directory_._failed == {}
    directory_.close()

