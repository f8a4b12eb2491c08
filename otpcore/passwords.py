"""First-factor passwords kept in the store: argon2id hashes (argon2-cffi).

Parameters follow OWASP's argon2id recommendation (m = 19 MiB, t = 2, p = 1): about 15-25 ms per check on one core.
Hashes record their own parameters, so changing these later still verifies old hashes (and `needs_rehash` tells).
"""

from __future__ import annotations

import contextlib
from functools import cache
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = ["ARGON2_PARAMETERS", "burn_time", "hash_password", "validate_reversible", "verify_password"]

ARGON2_PARAMETERS = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1, "hash_len": 32, "salt_len": 16}


@cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher  # imported on first use: a PAM login in local mode never needs it

    p = ARGON2_PARAMETERS
    return PasswordHasher(time_cost=p["time_cost"], memory_cost=p["memory_cost"], parallelism=p["parallelism"],
                          hash_len=p["hash_len"], salt_len=p["salt_len"])


def hash_password(password: bytes) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str | None, password: bytes) -> bool:
    """Compare as bytes (no decoding: b"pass\\xffword" never equals "password"). A missing hash never matches."""
    from argon2.exceptions import InvalidHashError, VerificationError

    if not stored_hash:
        burn_time(password)
        return False
    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return hash_password(b"not a password of anyone")


def burn_time(password: bytes) -> None:
    """Spend what a real check costs, so an unknown user cannot be told from a wrong password by timing."""
    from argon2.exceptions import VerificationError

    with contextlib.suppress(VerificationError):
        _hasher().verify(_dummy_hash(), password)


def validate_reversible(password: bytes) -> str:
    """A password kept reversible is text: MS-CHAP hashes its characters (UTF-16), CHAP its UTF-8 octets."""
    try:
        return password.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("a reversible password must be valid UTF-8") from None
