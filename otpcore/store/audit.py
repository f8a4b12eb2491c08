"""The audit trail: one row per decision and per change an admin makes; rows only ever append."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from .dialect import Dialect
from .rows import AuditRow
from .sqlcore import Params, SqlStore, printable

__all__ = ["Audit", "AuditSql"]


class AuditSql:
    """The audit's statements in one dialect."""

    def __init__(self, d: Dialect) -> None:
        self.dialect = d
        self.insert = d.sql('INSERT INTO audit (time, "user", door, client, result, reason, source) '
                            "VALUES (?, ?, ?, ?, ?, ?, ?)")

    def select(self, *, user: bool, since: bool, limit: bool) -> str:
        """The query of audit_rows(), with the filters asked for."""
        where = [condition for condition, wanted in (('"user" = ?', user), ("time >= ?", since)) if wanted]
        sql = 'SELECT id, time, "user", door, client, result, reason, source FROM audit'
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time, id"  # the index by time: --since reads only that part of the trail
        if limit:
            sql += " LIMIT ?"
        return self.dialect.sql(sql)


class Audit(SqlStore):
    _audit_sql: ClassVar[AuditSql]

    def audit(
        self, *, now: float, user: str | None, door: str, client: str | None, result: str, reason: str,
        source: str | None = None,
    ) -> None:
        """One audit row. Inside a transaction it is written at the transaction's end, with the others in one
        statement (so audit_rows() in the same transaction does not see it yet); rolled back with the rest."""
        row = (now, printable(user), door, printable(client), result, reason, printable(source))
        if self._depth:
            self._pending_audit.append(row)  # written with the others at the end of the transaction, in one statement
        else:
            self._run(self._audit_sql.insert, row)

    def audit_rows(self, *, user: str | None = None, since: float | None = None, limit: int | None = None
                   ) -> list[AuditRow]:
        params: list[Any] = [value for value in (user, since, limit) if value is not None]
        sql = self._audit_sql.select(user=user is not None, since=since is not None, limit=limit is not None)
        return [AuditRow(*r) for r in self._all(sql, tuple(params))]

    def _flush_audit(self, rows: Sequence[Params]) -> None:
        self._many(self._audit_sql.insert, rows)
