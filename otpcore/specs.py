"""What a user and a token are made of, as given by an admin or read from an import file: checked here, before
anything touches the store (otpcore.admin writes them; otpcore.importers reads them from files)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import oob
from .errors import InputError
from .oath import ALGORITHMS

__all__ = ["MAX_COUNTER", "OTP_TOKEN_TYPES", "TOKEN_TYPES", "TokenSpec", "UserSpec", "validate_group_name",
           "validate_user_name"]

OTP_TOKEN_TYPES = ("totp", "hotp")
TOKEN_TYPES = (*OTP_TOKEN_TYPES, *oob.CHANNELS)
MAX_COUNTER = 2**62  # an HOTP counter and its look-ahead stay within SQLite's 64-bit INTEGER
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class TokenSpec:
    type: str = "totp"
    secret: bytes | None = None  # None: a new random 160-bit secret
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    t0: int = 0
    counter: int = 0
    last_step: int = -1
    window: int | None = None
    issuer: str | None = None
    # email/sms tokens: per-token knobs (length, alphabet, validity, max_attempts, resend_interval; see otpcore.oob),
    # each falling back to the [policy] oob_* default when absent. A `digits` other than 6 sets the length.
    options: Mapping[str, Any] = field(default_factory=dict)
    # Where an imported token was read ("CSV line 4"), for the error that refuses it.
    source: str | None = field(default=None, compare=False)

    def validated(self) -> TokenSpec:
        if self.type not in TOKEN_TYPES:
            raise InputError(f"token type must be one of {', '.join(TOKEN_TYPES)}, not {self.type!r}")
        if self.type in oob.CHANNELS:
            options = dict(self.options)
            if self.digits != 6:
                if options.get("length", self.digits) != self.digits:
                    raise InputError(f"digits {self.digits} and length {options['length']} disagree")
                options["length"] = self.digits
            options = oob.validate_options(options)
            return replace(self, secret=None, options=options, digits=options.get("length", 6))
        if self.options:
            raise InputError("options (length, alphabet, validity ...) are for email and sms tokens only")
        algorithm = self.algorithm.upper().replace("-", "")
        if algorithm not in ALGORITHMS:
            raise InputError(f"algorithm must be SHA1, SHA256 or SHA512, not {self.algorithm!r}")
        if self.digits not in (6, 7, 8):
            raise InputError(f"digits must be 6, 7 or 8, not {self.digits}")
        if not 1 <= self.period <= 3600:
            raise InputError(f"period must be between 1 and 3600 seconds, not {self.period}")
        if not 0 <= self.counter <= MAX_COUNTER:
            raise InputError(f"counter must be between 0 and {MAX_COUNTER}, not {self.counter}")
        if self.window is not None and not 0 <= self.window <= 100:
            raise InputError(f"window must be between 0 and 100, not {self.window}")
        if self.secret is not None and len(self.secret) < 10:
            raise InputError("secret is too short: at least 80 bits are required")
        return replace(self, algorithm=algorithm)


@dataclass(frozen=True)
class UserSpec:
    name: str
    email: str | None = None
    phone: str | None = None
    password: bytes | None = None


def validate_user_name(name: str) -> str:
    if not name or len(name) > 253 or any(c.isspace() or not c.isprintable() for c in name):
        raise InputError(f"invalid user name {name!r}: 1-253 printable characters, no spaces")
    return name


def validate_group_name(name: str) -> str:
    """A reply group's name (otpcore.replies)."""
    if not _GROUP_NAME.fullmatch(name):
        raise InputError(f"invalid group name {name!r}: 1-64 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit")
    return name
