"""Accounting sessions (RFC 2866): each request read, judged by the rules of `sessionrules`, and written, in one
transaction. Accounting-On/Off closes a NAS's sessions in one statement: those that started after it are stale for
it and stay open."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from . import sessionrules
from .dialect import Dialect
from .rows import NasClosed, SessionEvent, SessionRow, SessionWrite
from .sqlcore import SqlStore, printable

__all__ = ["SessionSql", "Sessions"]

_COLUMNS = ("id", "client", "session_id", '"user"', "nas_address", "nas_identifier", "framed_ip", "calling_station",
            "start_time", "last_update", "stop_time", "session_time", "input_octets", "output_octets",
            "terminate_cause", "status")
_COLS = ", ".join(_COLUMNS)
_TEXT = ("session_id", "user", "nas_identifier", "framed_ip", "calling_station", "terminate_cause")  # from the NAS
_MERGED = ('"user"', "nas_identifier", "framed_ip", "calling_station", "last_update", "stop_time", "session_time",
           "input_octets", "output_octets", "terminate_cause", "status")  # what merging an event may change


class SessionSql:
    """The sessions' statements in one dialect."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.dialect = d
        self.latest = q(f"SELECT {_COLS} FROM sessions WHERE client = ? AND session_id = ? ORDER BY id DESC LIMIT 1")
        self.insert = q(f"INSERT INTO sessions ({', '.join(_COLUMNS[1:])}) VALUES ({', '.join('?' * 15)})")
        self.update = q(f"UPDATE sessions SET {', '.join(c + ' = ?' for c in _MERGED)} WHERE id = ?")
        self.lock = q(d.lock_key) if d.lock_key else ""  # one session's requests, one at a time across servers

    def of_nas(self, with_identifier: bool) -> str:
        """The open sessions of a NAS (client, NAS address, and NAS-Identifier when the request has one)."""
        where = f"WHERE client = ? AND stop_time IS NULL AND nas_address {self.dialect.is_same} ?"
        if with_identifier:
            where += f" AND nas_identifier {self.dialect.is_same} ?"
        return where

    def close_nas(self, with_identifier: bool) -> str:
        return self.dialect.sql(
            f"UPDATE sessions SET stop_time = {self.dialect.greatest}(?, last_update), status = 'closed', "
            f"terminate_cause = coalesce(terminate_cause, ?) {self.of_nas(with_identifier)} AND start_time <= ?")

    def count_nas(self, with_identifier: bool) -> str:
        return self.dialect.sql(f"SELECT count(*) FROM sessions {self.of_nas(with_identifier)}")

    def select(self, *, active_only: bool, user: bool) -> str:
        where = [condition for condition, wanted in (("stop_time IS NULL", active_only), ('"user" = ?', user))
                 if wanted]
        return self.dialect.sql(f"SELECT {_COLS} FROM sessions" + (" WHERE " + " AND ".join(where) if where else "")
                                + " ORDER BY start_time, id")


class Sessions(SqlStore):
    _session_sql: ClassVar[SessionSql]

    def session_start(self, event: SessionEvent) -> SessionWrite:
        """Record a Start. REPEATED when the session is already known (a repeated or late Start)."""
        return self._record(event, sessionrules.on_start)

    def session_update(self, event: SessionEvent) -> SessionWrite:
        """Record an Interim-Update; opens the session if its Start was lost."""
        return self._record(event, sessionrules.on_update)

    def session_stop(self, event: SessionEvent) -> SessionWrite:
        """Record a Stop; records the whole session if its Start was lost."""
        return self._record(event, sessionrules.on_stop)

    def close_nas_sessions(self, client: str, nas_address: str | None, nas_identifier: str | None, *, now: float,
                           cause: str = "NAS-Reboot") -> NasClosed:
        """Accounting-On/Off at `now` (its event time): the NAS restarted or stops, so none of the sessions it had
        then is open any more. Sessions that started after it are left open and counted as `stale`."""
        nas: list[Any] = [client, nas_address]
        if nas_identifier is not None:
            nas.append(printable(nas_identifier))
        sql, with_identifier = self._session_sql, nas_identifier is not None
        with self.transaction():
            closed = self._run(sql.close_nas(with_identifier), (now, cause, *nas, now))
            row = self._one(sql.count_nas(with_identifier), tuple(nas))
            return NasClosed(closed, row[0] if row else 0)

    def sessions(self, *, active_only: bool = False, user: str | None = None) -> list[SessionRow]:
        sql = self._session_sql.select(active_only=active_only, user=user is not None)
        return [SessionRow(*r) for r in self._all(sql, () if user is None else (user,))]

    def _record(self, event: SessionEvent,
                rule: Callable[[SessionRow | None, SessionEvent], sessionrules.Plan]) -> SessionWrite:
        texts: dict[str, Any] = {name: printable(getattr(event, name)) for name in _TEXT}
        event = event._replace(**texts)
        with self.transaction():
            if self._session_sql.lock:  # else the transaction holds the whole store's write lock
                self._one(self._session_sql.lock, (f"session {event.client} {event.session_id}",))
            latest = self._one(self._session_sql.latest, (event.client, event.session_id))
            plan = rule(SessionRow(*latest) if latest else None, event)
            if plan.insert is not None:
                self._run(self._session_sql.insert, _values(plan.insert)[1:])
            if plan.update is not None:
                merged = plan.update
                self._run(self._session_sql.update,
                          (merged.user, merged.nas_identifier, merged.framed_ip, merged.calling_station,
                           merged.last_update, merged.stop_time, merged.session_time, merged.input_octets,
                           merged.output_octets, merged.terminate_cause, merged.status, merged.id))
            return plan.result


def _values(row: SessionRow) -> tuple[Any, ...]:
    return (row.id, row.client, row.session_id, row.user, row.nas_address, row.nas_identifier, row.framed_ip,
            row.calling_station, row.start_time, row.last_update, row.stop_time, row.session_time, row.input_octets,
            row.output_octets, row.terminate_cause, row.status)
