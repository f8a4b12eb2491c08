"""Challenges: the single-use States of Access-Challenges, and the codes sent by e-mail or SMS (as keyed hashes)."""

from __future__ import annotations

from typing import ClassVar

from .dialect import Dialect
from .rows import ChallengeRow
from .sqlcore import SqlStore

__all__ = ["ChallengeSql", "Challenges"]

_COLS = "state, user_id, client, token_id, created, expires, code_hash, attempts, state_expires"


class ChallengeSql:
    """The challenges' statements in one dialect."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.insert = q(f"INSERT INTO challenges ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        self.take = q(f"DELETE FROM challenges WHERE state = ? RETURNING {_COLS}")
        self.get = q(f"SELECT {_COLS} FROM challenges WHERE state = ?")
        self.purge = q("DELETE FROM challenges WHERE expires < ?")
        self.with_code = q(f"SELECT {_COLS} FROM challenges WHERE user_id = ? AND code_hash IS NOT NULL "
                           "ORDER BY created DESC")
        self.set_attempts = q("UPDATE challenges SET attempts = ? WHERE state = ?")
        self.delete = q("DELETE FROM challenges WHERE state = ?")
        # Where rows are locked, the owner's row is locked before its challenge's (the order of a verification, which
        # locks the user, then updates its challenges): two servers never wait for each other in a circle.
        self.lock_owner = q("SELECT u.id FROM users u WHERE u.id = (SELECT user_id FROM challenges WHERE state = ?)"
                            f"{d.lock_users}") if d.lock_users else ""


class Challenges(SqlStore):
    _challenge_sql: ClassVar[ChallengeSql]

    def add_challenge(self, row: ChallengeRow) -> None:
        self._run(self._challenge_sql.insert,
                  (row.state, row.user_id, row.client, row.token_id, row.created, row.expires, row.code_hash,
                   row.attempts, row.state_expires))

    def take_challenge(self, state: bytes) -> ChallengeRow | None:
        """Remove and return the challenge: a State is single use (of two servers taking it at once, one gets it)."""
        if self._challenge_sql.lock_owner and self._depth:
            self._one(self._challenge_sql.lock_owner, (state,))
        rows = self._all(self._challenge_sql.take, (state,))
        return ChallengeRow(*rows[0]) if rows else None

    def challenge(self, state: bytes) -> ChallengeRow | None:
        row = self._one(self._challenge_sql.get, (state,))
        return ChallengeRow(*row) if row else None

    def purge_challenges(self, now: float) -> None:
        self._run(self._challenge_sql.purge, (now,))

    def code_challenges(self, user_id: int) -> list[ChallengeRow]:
        """The user's challenges that carry a sent code (email/sms), newest first."""
        return [ChallengeRow(*r) for r in self._all(self._challenge_sql.with_code, (user_id,))]

    def set_challenge_attempts(self, state: bytes, attempts: int) -> None:
        self._run(self._challenge_sql.set_attempts, (attempts, state))

    def delete_challenge(self, state: bytes) -> None:
        self._run(self._challenge_sql.delete, (state,))
