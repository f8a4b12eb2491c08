"""First factors: how the password part of a login is checked, one module per kind, chosen per client.

A first factor answers (in a Checked) Reason.OK, a refusal (WRONG_PASSWORD, NO_PASSWORD, NOT_IN_GROUP ...) or
FIRST_FACTOR_UNAVAILABLE (the check itself failed: the login is refused, never let through). For a user the store
does not know (`row` None) it must do the work a real check does, so that timing does not tell who exists; "ldap"
answers OK for a user of the directory the store does not know yet (the service then treats them as a user without
tokens). The kind "none" has no first factor: the client (or an earlier PAM module) checked the password, and only
the code is checked here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .checked import Checked

if TYPE_CHECKING:
    from ..policy import Policy
    from ..store import UserRow
    from .ldap import Directory

__all__ = ["KINDS", "Checked", "FirstFactor", "first_factor"]

KINDS = ("store", "pam", "ldap", "none")


class FirstFactor(Protocol):
    def check(self, user: str, row: UserRow | None, password: bytes) -> Checked: ...


def first_factor(kind: str, policy: Policy, directory: Callable[[], Directory]) -> FirstFactor:
    """The first factor of this kind ("none" has none: callers check the code alone). `directory` gives the
    directory of [ldap] (ConfigError without one)."""
    if kind == "store":
        from .store import StorePassword

        return StorePassword()
    if kind == "pam":
        from .pam import PamPassword

        return PamPassword(policy.pam_service)
    if kind == "ldap":
        from .ldap import LdapPassword

        return LdapPassword(directory())
    raise ValueError(f"unknown first factor {kind!r}")
