"""The per-client throttle: one failed-login bucket per client (policy.throttled decides, the store keeps the level)."""

from __future__ import annotations

from typing import ClassVar

from ..policy import NO_THROTTLE, ThrottleState
from .dialect import Dialect
from .sqlcore import SqlStore

__all__ = ["Throttle", "ThrottleSql"]


class ThrottleSql:
    """The throttle's statements in one dialect."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.get = q("SELECT level, updated FROM throttle WHERE key = ?")
        # policy.throttle_failure in one statement: the level drained at `rate` per second since the row's update, plus
        # one. Atomic, so that servers counting failures of one client at once lose none (no read-decide-write).
        g = d.greatest
        self.count = q("INSERT INTO throttle (key, level, updated) VALUES (?, 1, ?) ON CONFLICT (key) DO UPDATE SET "
                       f"level = {g}(0.0, throttle.level - {g}(0.0, excluded.updated - throttle.updated) * ?) + 1, "
                       "updated = excluded.updated")


class Throttle(SqlStore):
    _throttle_sql: ClassVar[ThrottleSql]

    def throttle(self, key: str) -> ThrottleState:
        """The client's failed-login bucket (policy.throttled); read once per transaction."""
        cached = self._throttles.get(key)
        if cached is not None:
            return cached
        row = self._one(self._throttle_sql.get, (key,))
        state = ThrottleState(*row) if row else NO_THROTTLE
        if self._depth:
            self._throttles[key] = state
        return state

    def count_throttle_failure(self, key: str, *, now: float, rate: float) -> None:
        """One more failed login of the client (policy.throttle_failure, with the policy's drain rate)."""
        self._throttles.pop(key, None)
        self._run(self._throttle_sql.count, (key, now, rate))
