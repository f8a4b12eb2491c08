"""First factor "pam": the system's PAM stack `policy.pam_service` checks the password (python-pam)."""

from __future__ import annotations

from ..decision import Reason
from ..store import UserRow
from .checked import Checked

__all__ = ["PamPassword", "pam_authenticate"]


class PamPassword:
    def __init__(self, service: str) -> None:
        self.service = service

    def check(self, user: str, row: UserRow | None, password: bytes) -> Checked:
        # A user the store does not know is still asked of PAM (its hashing and fail delay), so timing tells nobody.
        verdict = pam_authenticate(row.name if row is not None else user, password, self.service)
        if verdict is None:
            return Checked(Reason.FIRST_FACTOR_UNAVAILABLE)
        if row is None:
            return Checked(Reason.UNKNOWN_USER)
        return Checked(Reason.OK if verdict else Reason.WRONG_PASSWORD)


def pam_authenticate(user: str, password: bytes, service: str) -> bool | None:
    """The system's PAM stack `service` checks the password (python-pam). None if PAM itself fails."""
    import pam  # python-pam: loaded only by deployments that use first_factor = "pam"

    try:
        return bool(pam.authenticate(user, password, service=service, resetcreds=False))
    except Exception:  # libpam or ctypes failure: fail closed, reported as unavailable
        return None
