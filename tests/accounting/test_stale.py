"""Stale accounting: an Accounting-On/Off, Stop or Interim-Update whose event time is before a session's start is
about an earlier session (a replay, or a late packet) and must not close or change that session. First the attack on
a real otp-radiusd with FreeRADIUS's radclient, then the edge cases on the store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otpcore.store import NasClosed, SessionEvent, SessionRow, SessionWrite, Store
from otpcore.store.sqlite import SqliteStore
from tests.kit.radiusd import RadiusServer

from .helpers import radclient_acct

T0 = 1_700_000_000.0
NAS = "192.0.2.1"


def _session(status: str, session_id: str, when: int, extra: str = "") -> str:
    return (f"Acct-Status-Type = {status}\nAcct-Session-Id = \"{session_id}\"\nUser-Name = \"alice\"\n"
            f"NAS-IP-Address = {NAS}\nEvent-Timestamp = {when}\n{extra}")


def _nas_event(status: str, when: int) -> str:
    return f"Acct-Status-Type = {status}\nNAS-IP-Address = {NAS}\nEvent-Timestamp = {when}\n"


@pytest.fixture
def send(server: RadiusServer, require_tool: Callable[[str], str]) -> Callable[[str], str]:
    radclient = require_tool("radclient")
    return lambda attributes: radclient_acct(radclient, server.acct_port, attributes)


def _by_id(server: RadiusServer) -> dict[str, SessionRow]:
    return {row.session_id: row for row in server.sessions()}


def test_a_replayed_accounting_off_older_than_a_session_leaves_it_open(server: RadiusServer,
                                                                       send: Callable[[str], str]) -> None:
    now = int(time.time())
    send(_session("Start", "before", now - 200))
    send(_session("Start", "live", now))
    send(_nas_event("Accounting-Off", now - 100))  # the NAS's Off of 100 s ago, replayed (or late)
    sessions = _by_id(server)
    assert (sessions["live"].status, sessions["live"].stop_time) == ("active", None)
    assert (sessions["before"].status, sessions["before"].stop_time) == ("closed", now - 100)
    assert ("accounting-off: 1 open session(s) closed; ignored as stale by 1 session(s) that started after it"
            in server.log())

    send(_nas_event("Accounting-Off", now + 5))  # a current one still closes it
    assert (_by_id(server)["live"].status, _by_id(server)["live"].stop_time) == ("closed", now + 5)


def test_a_stop_older_than_the_session_start_is_ignored(server: RadiusServer, send: Callable[[str], str]) -> None:
    now = int(time.time())
    send(_session("Start", "s", now))
    send(_session("Stop", "s", now - 1, "Acct-Input-Octets = 999\n"))
    (row,) = server.sessions()
    assert (row.status, row.stop_time, row.input_octets) == ("active", None, None)
    assert "session=s stop ignored as stale: its event time is before the session's start" in server.log()

    send(_session("Stop", "s", now + 30, "Acct-Input-Octets = 7\n"))
    (row,) = server.sessions()
    assert (row.status, row.stop_time, row.input_octets) == ("stopped", now + 30, 7)


def test_an_earlier_sessions_stop_does_not_close_a_reused_session_id(server: RadiusServer,
                                                                     send: Callable[[str], str]) -> None:
    now = int(time.time())
    send(_session("Start", "reused", now - 1000))
    old_stop = _session("Stop", "reused", now - 900)
    send(old_stop)
    send(_session("Start", "reused", now))  # the NAS reuses the Acct-Session-Id
    send(old_stop)  # the first session's Stop again
    assert [(r.start_time, r.status) for r in server.sessions()] == [(now - 1000, "stopped"), (now, "active")]
    assert "stop ignored as stale" in server.log()


# -- the store ----------------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = SqliteStore.open(tmp_path / "otp.sqlite", create=True)
    yield s
    s.close()


def _event(when: float, session_id: str = "s", **fields: object) -> SessionEvent:
    return SessionEvent("vpn", session_id, when, user="alice", nas_address=NAS, **fields)  # type: ignore[arg-type]


def _close(store: Store, when: float) -> NasClosed:
    return store.close_nas_sessions("vpn", NAS, None, now=when)


def test_an_event_at_the_start_time_is_not_stale(store: Store) -> None:
    store.session_start(_event(T0, "stopped"))
    store.session_start(_event(T0, "closed"))
    assert store.session_stop(_event(T0, "stopped")) is SessionWrite.RECORDED
    assert _close(store, T0) == NasClosed(closed=1, stale=0)
    assert [(r.session_id, r.status, r.stop_time) for r in store.sessions()] == [("stopped", "stopped", T0),
                                                                                 ("closed", "closed", T0)]


def test_events_before_the_start_change_nothing(store: Store) -> None:
    store.session_start(_event(T0))
    (before,) = store.sessions()
    assert store.session_stop(_event(T0 - 1, input_octets=5)) is SessionWrite.STALE
    assert store.session_update(_event(T0 - 1, input_octets=5, session_time=10)) is SessionWrite.STALE
    assert _close(store, T0 - 1) == NasClosed(closed=0, stale=1)
    assert store.sessions() == [before]


def test_a_lost_start_is_judged_by_the_start_its_first_request_implies(store: Store) -> None:
    assert store.session_update(_event(T0, session_time=60)) is SessionWrite.RECORDED  # opened: started at T0 - 60
    assert _close(store, T0 - 61) == NasClosed(closed=0, stale=1)
    assert store.session_stop(_event(T0 - 61)) is SessionWrite.STALE
    assert store.session_stop(_event(T0 + 30, session_time=90)) is SessionWrite.RECORDED
    (row,) = store.sessions()
    assert (row.start_time, row.stop_time, row.status) == (T0 - 60, T0 + 30, "stopped")
    # A Stop with nothing before it is the whole session: there is no start it could be older than.
    assert store.session_stop(_event(T0 - 5000, "only-stop", session_time=100)) is SessionWrite.RECORDED
    assert _close(store, T0 - 5100) == NasClosed(closed=0, stale=0)


def test_a_reused_session_id_after_a_real_stop(store: Store) -> None:
    store.session_start(_event(T0))
    assert store.session_stop(_event(T0 + 10)) is SessionWrite.RECORDED
    assert store.session_start(_event(T0 + 1000)) is SessionWrite.RECORDED  # a new session with the same id
    # Whatever belonged to the first session (its Stop, an update, the NAS's Off meanwhile) leaves the second alone.
    assert store.session_stop(_event(T0 + 10)) is SessionWrite.STALE
    assert store.session_update(_event(T0 + 5, input_octets=9)) is SessionWrite.STALE
    assert _close(store, T0 + 500) == NasClosed(closed=0, stale=1)
    assert [(r.status, r.stop_time) for r in store.sessions()] == [("stopped", T0 + 10), ("active", None)]

    assert store.session_stop(_event(T0 + 1010)) is SessionWrite.RECORDED
    assert store.session_stop(_event(T0 + 1010)) is SessionWrite.REPEATED
    assert [(r.start_time, r.stop_time, r.status) for r in store.sessions()] == [
        (T0, T0 + 10, "stopped"), (T0 + 1000, T0 + 1010, "stopped")]
