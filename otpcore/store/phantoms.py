"""Failed logins of user names nobody has: kept like a user's (a count, the last wrong entry, a lockout), under a
keyed fingerprint of the name, so that an unknown name is refused, counted and locked exactly as a real user is, at
the same cost (a row read and, on a new failure, a row written). Rows not touched for a day are purged."""

from __future__ import annotations

from typing import ClassVar

from ..policy import CLEAR, FailureState
from .dialect import Dialect
from .sqlcore import SqlStore

__all__ = ["PhantomSql", "Phantoms"]


class PhantomSql:
    """The statements in one dialect."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.get = q("SELECT failures, last_bad, locked_at, lockouts FROM phantoms WHERE key = ?")
        self.put = q("INSERT INTO phantoms (key, failures, last_bad, locked_at, lockouts, updated) "
                     "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, "
                     "last_bad = excluded.last_bad, locked_at = excluded.locked_at, lockouts = excluded.lockouts, "
                     "updated = excluded.updated")
        self.purge = q("DELETE FROM phantoms WHERE updated < ?")


class Phantoms(SqlStore):
    _phantom_sql: ClassVar[PhantomSql]

    def phantom_failures(self, key: bytes) -> FailureState:
        """The failure state of an unknown name (by its keyed fingerprint); CLEAR when it has none."""
        row = self._one(self._phantom_sql.get, (key,))
        return FailureState(*row) if row else CLEAR

    def set_phantom_failures(self, key: bytes, state: FailureState, now: float) -> None:
        self._run(self._phantom_sql.put, (key, state.failures, state.last_bad, state.locked_at, state.lockouts, now))

    def purge_phantoms(self, before: float) -> None:
        self._run(self._phantom_sql.purge, (before,))
