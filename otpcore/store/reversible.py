"""Reversible passwords: the few users who opted in (`otp-admin user passwd --reversible`) keep their first-factor
password sealed (AES-GCM, bound to the user) beside its argon2 hash, so that a challenge-response login (MS-CHAPv2,
CHAP), which proves the password and the code together without sending them, can be checked. One row per such user."""

from __future__ import annotations

from typing import ClassVar

from .dialect import Dialect
from .sqlcore import SqlStore

__all__ = ["ReversiblePasswords", "ReversibleSql"]


class ReversibleSql:
    """The statements in one dialect."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.get = q("SELECT sealed FROM reversible_passwords WHERE user_id = ?")
        self.put = q("INSERT INTO reversible_passwords (user_id, sealed) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE "
                     "SET sealed = excluded.sealed")
        self.delete = q("DELETE FROM reversible_passwords WHERE user_id = ?")


class ReversiblePasswords(SqlStore):
    _reversible_sql: ClassVar[ReversibleSql]

    def reversible_password(self, user_id: int) -> bytes | None:
        """The user's sealed reversible password; None when the user did not opt in."""
        row = self._one(self._reversible_sql.get, (user_id,))
        return bytes(row[0]) if row else None

    def set_reversible_password(self, user_id: int, sealed: bytes | None) -> None:
        """Keep the sealed password (None: keep none)."""
        if sealed is None:
            self._run(self._reversible_sql.delete, (user_id,))
        else:
            self._run(self._reversible_sql.put, (user_id, sealed))
