"""Sessions recorded from Accounting-Requests: idempotent per (client, Acct-Session-Id), Accounting-On/Off."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from otpbase.radius.accounting import decode_accounting
from otpbase.radius.constants import (
    ACCOUNTING_OFF,
    ACCOUNTING_ON,
    ACCT_INPUT_GIGAWORDS,
    ACCT_INPUT_OCTETS,
    ACCT_OUTPUT_OCTETS,
    ACCT_SESSION_TIME,
    ACCT_STATUS_TYPE,
    ACCT_TERMINATE_CAUSE,
    FRAMED_IP_ADDRESS,
    INTERIM_UPDATE,
    NAS_IDENTIFIER,
    NAS_IP_ADDRESS,
    START,
    STOP,
)
from otpbase.radius.replies import encode_accounting_response
from otpcore.store import SCHEMA_VERSION, NasClosed, SessionEvent, SessionRow, SessionWrite, Store
from otpcore.store.sqlite import SqliteStore
from radiusd.accounting import record

from .helpers import (
    SECRET,
    accounting_request,
    integer,
    ip,
    session_attrs,
)

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = SqliteStore.open(tmp_path / "otp.sqlite", create=True)
    yield s
    s.close()


def feed(store: Store, raw: bytes, now: float, *, client: str = "vpn", source: str = "192.0.2.1") -> str:
    """What the server does with an authentic Accounting-Request: decode, record, and only then answer."""
    request = decode_accounting(raw, SECRET)
    outcome = record(store, request, client=client, source=source, now=now)
    encode_accounting_response(request, SECRET)
    return outcome


def counters(inp: int, out: int, seconds: int) -> list[tuple[int, bytes]]:
    return [(ACCT_INPUT_OCTETS, integer(inp)), (ACCT_OUTPUT_OCTETS, integer(out)),
            (ACCT_SESSION_TIME, integer(seconds))]


def only(store: Store) -> SessionRow:
    (row,) = store.sessions()
    return row


def test_start_interim_stop(store: Store) -> None:
    start = accounting_request(session_attrs(START, "s1", extra=[(FRAMED_IP_ADDRESS, ip("10.8.0.6")),
                                                                      (NAS_IDENTIFIER, b"OpenVpn")]))
    assert feed(store, start, T0) == "start"
    row = only(store)
    assert (row.client, row.session_id, row.user, row.nas_address, row.nas_identifier, row.framed_ip) == \
        ("vpn", "s1", "alice", "192.0.2.1", "OpenVpn", "10.8.0.6")
    assert (row.start_time, row.last_update, row.stop_time, row.status) == (T0, T0, None, "active")
    assert store.sessions(active_only=True) == [row]

    assert feed(store, accounting_request(session_attrs(INTERIM_UPDATE, "s1", extra=counters(10, 20, 60))),
                T0 + 60) == "interim-update"
    row = only(store)
    assert (row.input_octets, row.output_octets, row.session_time, row.last_update) == (10, 20, 60, T0 + 60)

    stop = accounting_request(session_attrs(STOP, "s1", extra=[
        *counters(5, 30, 90), (ACCT_INPUT_GIGAWORDS, integer(1)), (ACCT_TERMINATE_CAUSE, integer(1))]))
    assert feed(store, stop, T0 + 90) == "stop"
    row = only(store)
    assert (row.input_octets, row.output_octets, row.session_time) == (2**32 + 5, 30, 90)
    assert (row.stop_time, row.terminate_cause, row.status) == (T0 + 90, "User-Request", "stopped")
    assert store.sessions(active_only=True) == []


def test_repeated_requests_are_recorded_once(store: Store) -> None:
    """A NAS that retransmits with a new ID and Acct-Delay-Time (so no cache could match it) changes nothing."""
    feed(store, accounting_request(session_attrs(START, "s1", delay=0), ident=1), T0)
    assert feed(store, accounting_request(session_attrs(START, "s1", delay=5), ident=2), T0 + 5) == \
        "start (already recorded)"
    interim = session_attrs(INTERIM_UPDATE, "s1", extra=counters(10, 20, 60))
    feed(store, accounting_request(interim), T0 + 60)
    before = only(store)
    assert feed(store, accounting_request(interim), T0 + 60) == "interim-update (already recorded)"
    assert only(store) == before
    stop = session_attrs(STOP, "s1", extra=[*counters(11, 21, 61), (ACCT_TERMINATE_CAUSE, integer(2))])
    feed(store, accounting_request(stop, ident=3), T0 + 61)
    stopped = only(store)
    assert feed(store, accounting_request(stop, ident=4), T0 + 70) == "stop (already recorded)"
    assert feed(store, accounting_request(session_attrs(START, "s1"), ident=5), T0 + 30) == \
        "start (already recorded)"  # a Start that arrives after its Stop reopens nothing
    assert feed(store, accounting_request(interim, ident=6), T0 + 80) == "interim-update (already recorded)"
    assert store.sessions() == [stopped]
    assert stopped.terminate_cause == "Lost-Carrier"


def test_counters_never_go_backwards(store: Store) -> None:
    feed(store, accounting_request(session_attrs(START, "s1")), T0)
    feed(store, accounting_request(session_attrs(INTERIM_UPDATE, "s1", extra=counters(100, 200, 120))), T0 + 120)
    feed(store, accounting_request(session_attrs(INTERIM_UPDATE, "s1", extra=counters(50, 80, 60))), T0 + 60)
    row = only(store)
    assert (row.input_octets, row.output_octets, row.session_time, row.last_update) == (100, 200, 120, T0 + 120)


def test_sessions_are_per_client_and_session_id(store: Store) -> None:
    raw = accounting_request(session_attrs(START, "same"))
    feed(store, raw, T0, client="vpn")
    feed(store, raw, T0, client="wifi")
    feed(store, accounting_request(session_attrs(START, "other", user="bob")), T0 + 1, client="vpn")
    assert [(r.client, r.session_id) for r in store.sessions()] == [("vpn", "same"), ("wifi", "same"), ("vpn", "other")]
    assert [r.session_id for r in store.sessions(user="bob")] == ["other"]


def test_stop_without_start_records_the_whole_session(store: Store) -> None:
    stop = session_attrs(STOP, "lost-start", extra=counters(1, 2, 300))
    assert feed(store, accounting_request(stop), T0) == "stop"
    row = only(store)
    assert (row.start_time, row.stop_time, row.status) == (T0 - 300, T0, "stopped")


def test_interim_without_start_opens_the_session(store: Store) -> None:
    feed(store, accounting_request(session_attrs(INTERIM_UPDATE, "s1", extra=counters(1, 2, 60))), T0)
    row = only(store)
    assert (row.start_time, row.status) == (T0 - 60, "active")


def test_a_reused_session_id_after_the_stop_is_a_new_session(store: Store) -> None:
    feed(store, accounting_request(session_attrs(START, "1")), T0)
    feed(store, accounting_request(session_attrs(STOP, "1")), T0 + 10)
    assert feed(store, accounting_request(session_attrs(START, "1")), T0 + 1000) == "start"
    assert [r.status for r in store.sessions()] == ["stopped", "active"]
    feed(store, accounting_request(session_attrs(STOP, "1")), T0 + 1010)
    assert [(r.start_time, r.stop_time) for r in store.sessions()] == [(T0, T0 + 10), (T0 + 1000, T0 + 1010)]


def test_accounting_on_and_off_close_the_sessions_of_that_nas(store: Store) -> None:
    feed(store, accounting_request(session_attrs(START, "a", nas="192.0.2.1")), T0)
    feed(store, accounting_request(session_attrs(START, "b", nas="192.0.2.1")), T0)
    feed(store, accounting_request(session_attrs(START, "c", nas="192.0.2.2")), T0)  # another NAS, same client
    feed(store, accounting_request(session_attrs(START, "d", nas="192.0.2.1")), T0, client="other")
    feed(store, accounting_request(session_attrs(STOP, "b", nas="192.0.2.1")), T0 + 5)
    on = accounting_request([(ACCT_STATUS_TYPE, integer(ACCOUNTING_ON)), (NAS_IP_ADDRESS, ip("192.0.2.1"))])
    assert feed(store, on, T0 + 100) == "accounting-on: 1 open session(s) closed"
    by_id = {r.session_id: r for r in store.sessions()}
    assert (by_id["a"].status, by_id["a"].stop_time, by_id["a"].terminate_cause) == ("closed", T0 + 100, "NAS-Reboot")
    assert by_id["b"].status == "stopped"
    assert by_id["c"].status == "active" and by_id["d"].status == "active"
    assert feed(store, on, T0 + 101) == "accounting-on: 0 open session(s) closed"

    # The NAS sends its queued Stop after the restart: the session gets its real end.
    stop = session_attrs(STOP, "a", extra=[*counters(7, 8, 50), (ACCT_TERMINATE_CAUSE, integer(11))])
    assert feed(store, accounting_request(stop), T0 + 110) == "stop"
    a = next(r for r in store.sessions() if r.session_id == "a")
    assert (a.status, a.input_octets, a.stop_time) == ("stopped", 7, T0 + 110)

    off = accounting_request([(ACCT_STATUS_TYPE, integer(ACCOUNTING_OFF))])  # no NAS address: the source's
    assert feed(store, off, T0 + 200, source="192.0.2.2") == "accounting-off: 1 open session(s) closed"
    assert [r.session_id for r in store.sessions(active_only=True)] == ["d"]


def test_other_status_types_are_acknowledged_not_recorded(store: Store) -> None:
    raw = accounting_request([(ACCT_STATUS_TYPE, integer(15))])  # Failed
    assert feed(store, raw, T0) == "status-type-15 (not recorded)"
    assert store.sessions() == []


def test_store_methods_report_changes(store: Store) -> None:
    event = SessionEvent("vpn", "x", T0, user="alice", nas_address="192.0.2.1")
    assert store.session_start(event) is SessionWrite.RECORDED
    assert store.session_start(event) is SessionWrite.REPEATED
    assert store.session_update(SessionEvent("vpn", "x", T0 + 1, input_octets=1)) is SessionWrite.RECORDED
    assert store.session_update(SessionEvent("vpn", "x", T0 + 1, input_octets=1)) is SessionWrite.REPEATED
    assert store.session_stop(SessionEvent("vpn", "x", T0 + 2)) is SessionWrite.RECORDED
    assert store.session_stop(SessionEvent("vpn", "x", T0 + 3)) is SessionWrite.REPEATED
    assert store.close_nas_sessions("vpn", "192.0.2.1", None, now=T0 + 4) == NasClosed(closed=0, stale=0)


def test_an_older_store_is_migrated(tmp_path: Path) -> None:
    """A store of schema 1 (before accounting) gets the sessions table when opened, its rows untouched."""
    import sqlite_utils

    from otpcore.store.sqlite.schema import _migration_1

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    _migration_1(sqlite_utils.Database(conn))
    conn.execute("INSERT INTO users (name, failures, created) VALUES ('alice', 0, 1)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = SqliteStore.open(path)
    try:
        assert store.user("alice") is not None
        assert store.sessions() == []
        assert store.session_start(SessionEvent("vpn", "x", T0)) is SessionWrite.RECORDED
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        store.close()
