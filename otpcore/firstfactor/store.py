"""First factor "store": the password is checked against the argon2id hash in the store (`otp-admin user passwd`)."""

from __future__ import annotations

from ..decision import Reason
from ..passwords import burn_time, verify_password
from ..store import UserRow
from .checked import Checked

__all__ = ["StorePassword"]


class StorePassword:
    def check(self, user: str, row: UserRow | None, password: bytes) -> Checked:
        return Checked(self._reason(row, password))

    @staticmethod
    def _reason(row: UserRow | None, password: bytes) -> Reason:
        if row is None:
            burn_time(password)
            return Reason.UNKNOWN_USER
        if not row.password_hash:
            burn_time(password)  # as long as a real check: timing does not tell who has no password
            return Reason.NO_PASSWORD
        return Reason.OK if verify_password(row.password_hash, password) else Reason.WRONG_PASSWORD
