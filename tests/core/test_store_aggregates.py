"""The store interface, aggregate by aggregate, on every backend (storekit.backend: SQLite and PostgreSQL): what is
written reads back the same, transactions commit together or not at all, and the verification's reads and
compare-and-set writes behave alike."""

from __future__ import annotations

import json
from typing import Any

import pytest

from otpcore import policy as pol
from otpcore.errors import NotFoundError, StoreError
from otpcore.store import ChallengeRow, SessionEvent, SessionWrite, Store, open_store

from .helpers import Installation
from .storekit import backend  # noqa: F401 (the fixture)


@pytest.fixture
def store(backend: Installation) -> Any:  # noqa: F811
    opened = open_store(backend.config.store)
    yield opened
    opened.close()


def _user(store: Store, name: str = "alice") -> int:
    return store.add_user(name, email=f"{name}@example.org", phone=None, password_hash="$argon2id$x", now=1.5)


def test_users_round_trip(store: Store) -> None:
    alice = _user(store)
    bob = _user(store, "bob")
    assert [u.name for u in store.users()] == ["alice", "bob"]
    row = store.require_user("alice")
    assert (row.id, row.email, row.phone, row.password_hash, row.failures, row.created) == (
        alice, "alice@example.org", None, "$argon2id$x", 0, 1.5)
    store.update_user_contact(alice, email=None, phone="+15550100")  # None keeps
    assert (store.require_user("alice").email, store.require_user("alice").phone) == ("alice@example.org", "+15550100")
    store.set_user_contact(alice, email=None, phone=None)  # None clears
    assert store.user_by_id(alice).email is None  # type: ignore[union-attr]
    store.set_failure_state(alice, pol.FailureState(3, b"\x00\xff", 12.25, 2))
    row = store.require_user("alice")
    assert (row.failures, row.last_bad, row.locked_at, row.lockouts) == (3, b"\x00\xff", 12.25, 2)
    store.set_oob_sends(alice, "[1.0, 2.0]")
    store.set_password_hash(alice, None)
    assert store.require_user("alice").oob_sends == "[1.0, 2.0]"
    with pytest.raises(StoreError, match="already exists"):
        _user(store)
    store.delete_user(bob)
    assert store.user("bob") is None
    with pytest.raises(NotFoundError):
        store.require_user("bob")


@pytest.mark.parametrize("name", ["x\0y", "\udcff", "a" * 300, ""])
def test_names_no_store_can_hold_are_nobody(store: Store, name: str) -> None:
    _user(store)
    assert store.user(name) is None
    assert store.user_with_tokens(name) == (None, [])
    assert store.users_with_tokens([name, "alice"])[name] == (None, [])


def test_tokens_and_compare_and_set(store: Store) -> None:
    alice = _user(store)
    totp = store.add_token(alice, {"type": "totp", "digits": 8, "window": 2, "issuer": "Example"}, 2.0)
    hotp = store.add_token(alice, {"type": "hotp", "counter": 2**40}, 2.0)
    store.set_token_secret(totp, b"\x00sealed\xff")
    row = store.require_token(totp)
    assert (row.type, row.digits, row.window, row.issuer, row.secret, row.active, row.seal) == (
        "totp", 8, 2, "Example", b"\x00sealed\xff", True, 2)
    assert store.advance_hotp(hotp, expected=2**40, new_counter=2**40 + 3)
    assert not store.advance_hotp(hotp, expected=2**40, new_counter=2**40 + 4)  # somebody moved it
    assert store.advance_totp(totp, expected=-1, new_step=55_000_000, drift=-1)
    assert not store.advance_totp(totp, expected=55_000_000, new_step=55_000_000, drift=0)  # not newer
    assert (store.require_token(totp).last_step, store.require_token(totp).drift) == (55_000_000, -1)
    store.set_token_option(totp, "last_sent", 12.5)
    store.set_token_option(totp, "label", "desk")
    assert json.loads(store.require_token(totp).options or "") == {"last_sent": 12.5, "label": "desk"}
    store.update_token(hotp, {"window": 5, "digits": 8})
    store.set_token_active(hotp, False)
    assert [t.id for t in store.tokens(alice, active_only=True)] == [totp]
    assert [t.id for t in store.tokens()] == [totp, hotp]
    assert store.tokens_sealed_before(2) == []
    user, tokens = store.user_with_tokens("alice")
    assert user is not None and [t.id for t in tokens] == [totp]
    store.delete_token(totp)
    assert store.token(totp) is None


def test_prefetch_reads_a_group_once_and_forgets_written_rows(store: Store) -> None:
    ids = {name: _user(store, name) for name in ("a", "b", "c")}
    token = store.add_token(ids["b"], {"type": "hotp"}, 0.0)
    with pytest.raises(StoreError):
        store.prefetch(["a"])  # only inside a transaction
    with store.transaction():
        store.prefetch(["c", "a", "b", "nobody"])
        assert store.user_with_tokens("nobody") == (None, [])
        assert store.advance_hotp(token, expected=0, new_counter=1)
        _, tokens = store.user_with_tokens("b")  # written meanwhile: read again
        assert tokens[0].counter == 1
        assert store.user_with_tokens("a")[0].id == ids["a"]  # type: ignore[union-attr]


def test_a_group_s_deferred_writes_and_audit_rows_read_back_exactly(store: Store) -> None:
    """In a group (prefetch) the compare-and-set advances and the audit rows leave together at the end (PostgreSQL:
    one JSON parameter per statement): large counters, a negative drift, a time with all its digits and text that
    needs escaping in JSON come back unchanged."""
    from otpcore.store.sqlcore import printable

    alice = _user(store, "zoë")
    hotp = store.add_token(alice, {"type": "hotp", "counter": 2**40}, 0.0)
    totp = store.add_token(alice, {"type": "totp"}, 0.0)
    user, client = 'zoë "q" \\ \u00e9 \t', "vpn/ü"
    with store.transaction():
        store.prefetch(["zoë"])
        assert store.advance_hotp(hotp, expected=2**40, new_counter=2**62 + 1)
        assert store.advance_totp(totp, expected=-1, new_step=57_766_666, drift=-2)
        store.audit(now=1732999999.1234567, user=user, door="radius", client=client, result="accept", reason="ok",
                    source="::1")
        store.audit(now=7, user=None, door="radius", client=None, result="reject", reason="wrong_code")
    assert store.require_token(hotp).counter == 2**62 + 1
    assert (store.require_token(totp).last_step, store.require_token(totp).drift) == (57_766_666, -2)
    rows = store.audit_rows()  # oldest first
    assert [(r.time, r.user, r.client, r.result, r.reason, r.source) for r in rows] == [
        (7.0, None, None, "reject", "wrong_code", None),
        (1732999999.1234567, printable(user), printable(client), "accept", "ok", "::1")]


def test_a_transaction_commits_together_or_not_at_all(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        _user(store)
        store.audit(now=1.0, user="alice", door="admin", client=None, result="ok", reason="user_added")
        raise RuntimeError("changed my mind")
    assert store.users() == [] and store.audit_rows() == []
    with store.transaction(), store.transaction():  # nested: one transaction
        _user(store)
        store.audit(now=1.0, user="alice", door="admin", client=None, result="ok", reason="user_added")
        assert store.audit_rows() == []  # written at the end, with the others
    assert [r.reason for r in store.audit_rows()] == ["user_added"]


def test_challenges_are_single_use(store: Store) -> None:
    alice = _user(store)
    row = ChallengeRow(state=b"\x00" * 16, user_id=alice, client="vpn", token_id=None, created=1.0, expires=100.0,
                       code_hash=b"\x01" * 16, attempts=0, state_expires=50.0)
    store.add_challenge(row)
    store.add_challenge(ChallengeRow(b"old", alice, "vpn", None, 0.0, 2.0, None, 0))
    assert store.challenge(row.state) == row
    assert store.code_challenges(alice) == [row]
    store.set_challenge_attempts(row.state, 2)
    store.purge_challenges(3.0)
    assert store.challenge(b"old") is None
    with store.transaction():
        taken = store.take_challenge(row.state)
    assert taken is not None and taken.attempts == 2
    assert store.take_challenge(row.state) is None  # a State is single use
    store.add_challenge(row)
    store.delete_challenge(row.state)
    assert store.challenge(row.state) is None


def test_the_throttle_counts_as_the_policy_does(store: Store) -> None:
    policy = pol.Policy(client_max_failures=10, client_failure_window=60)
    expected = pol.NO_THROTTLE
    assert store.throttle("radius:vpn") == expected
    for now in (100.0, 101.0, 101.0, 130.5, 400.0, 401.25):
        store.count_throttle_failure("radius:vpn", now=now, rate=pol.throttle_rate(policy))
        expected = pol.throttle_failure(expected, policy, now)
        got = store.throttle("radius:vpn")
        assert got.updated == expected.updated and got.level == pytest.approx(expected.level, abs=1e-9)
    assert store.throttle("radius:other") == pol.NO_THROTTLE


def test_audit_filters_and_text_from_the_network(store: Store) -> None:
    store.audit(now=1.0, user="alice", door="radius", client="vpn", result="accept", reason="ok", source="10.0.0.1")
    store.audit(now=2.0, user="bo\0b\udcff", door="radius", client="vpn", result="reject", reason="unknown_user")
    store.audit(now=3.0, user="alice", door="pam", client="sshd", result="reject", reason="wrong_code")
    assert [r.reason for r in store.audit_rows(user="alice")] == ["ok", "wrong_code"]
    assert [r.time for r in store.audit_rows(since=2.0)] == [2.0, 3.0]
    assert len(store.audit_rows(limit=1)) == 1
    assert store.audit_rows(since=2.0)[0].user == "bo\\x00b\\udcff"  # escaped, never lost
    assert store.audit_rows()[0].source == "10.0.0.1"


def test_accounting_sessions(store: Store) -> None:
    start = SessionEvent("vpn", "s\x001", 100.0, user="alice", nas_address="10.0.0.1", nas_identifier="nas\x00")
    assert store.session_start(start) is SessionWrite.RECORDED
    assert store.session_start(start) is SessionWrite.REPEATED
    stop = SessionEvent("vpn", "s\x001", 160.0, session_time=60, input_octets=2**40, terminate_cause="User-Request")
    assert store.session_stop(stop) is SessionWrite.RECORDED
    other = SessionEvent("vpn", "s2", 150.0, user="bob", nas_address="10.0.0.1", nas_identifier="nas\x00")
    assert store.session_update(other) is SessionWrite.RECORDED
    closed = store.close_nas_sessions("vpn", "10.0.0.1", "nas\x00", now=170.0)
    assert closed.closed == 1
    rows = store.sessions()
    assert [(r.session_id, r.status) for r in rows] == [("s\\x001", "stopped"), ("s2", "closed")]
    assert rows[0].input_octets == 2**40 and rows[0].nas_identifier == "nas\\x00"
    assert [r.user for r in store.sessions(user="bob")] == ["bob"]
    assert store.sessions(active_only=True) == []


def test_a_transaction_s_audit_rows_of_every_kind_are_written_together(store: Store) -> None:
    """The audit rows of one transaction (PostgreSQL: one INSERT from a JSON parameter) with times given as ints and
    floats, results as the service's enums, and missing clients and sources."""
    from otpcore.decision import Reason, Verdict

    with store.transaction():
        store.audit(now=0, user="a", door="admin", client=None, result="ok", reason="user_added")
        store.audit(now=1.5, user="b", door="radius", client="vpn", result=Verdict.ACCEPT, reason=Reason.OK,
                    source="10.0.0.1")
        store.audit(now=2**40, user=None, door="pam", client="sshd", result=Verdict.REJECT, reason=Reason.WRONG_CODE)
    rows = store.audit_rows()
    assert [(r.time, r.user, r.client, r.result, r.reason, r.source) for r in rows] == [
        (0.0, "a", None, "ok", "user_added", None), (1.5, "b", "vpn", "accept", "ok", "10.0.0.1"),
        (float(2**40), None, "sshd", "reject", "wrong_code", None)]
