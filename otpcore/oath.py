"""HOTP (RFC 4226) and TOTP (RFC 6238) maths. Sans-I/O: pure functions; the clock is a parameter.

Verification returns the matched counter or time step, so the caller can refuse replays and record drift.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Iterable
from typing import NamedTuple

from .errors import InputError

__all__ = [
    "ALGORITHMS",
    "Match",
    "decode_base32",
    "encode_base32",
    "find_hotp",
    "find_totp",
    "hotp",
    "resync_hotp",
    "resync_totp",
    "time_step",
    "totp",
    "verify_hotp",
    "verify_totp",
]

ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}
_POW10 = [10**n for n in range(11)]
_COUNTER = struct.Struct(">Q")


class Match(NamedTuple):
    """A code matched at `value`: the HOTP counter or the TOTP time step. `offset` is value minus the expected one."""

    value: int
    offset: int


def hotp(secret: bytes, counter: int, digits: int = 6, algorithm: str = "SHA1") -> str:
    """RFC 4226 HOTP value as a zero-padded decimal string."""
    mac = hmac.new(secret, _COUNTER.pack(counter), ALGORITHMS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % _POW10[digits]).zfill(digits)


def time_step(now: float, period: int = 30, t0: int = 0) -> int:
    """RFC 6238 T = floor((now - T0) / X)."""
    return int((now - t0) // period)


def totp(secret: bytes, now: float, digits: int = 6, algorithm: str = "SHA1", period: int = 30, t0: int = 0) -> str:
    return hotp(secret, time_step(now, period, t0), digits, algorithm)


def verify_hotp(
    secret: bytes, code: str, counter: int, lookahead: int, digits: int = 6, algorithm: str = "SHA1"
) -> Match | None:
    """Match `code` against counters counter..counter+lookahead (the first hit wins; the caller stores value+1)."""
    if not _well_formed(code, digits):
        return None
    return _first_match(secret, code, range(counter, counter + lookahead + 1), counter, digits, algorithm)


def verify_totp(
    secret: bytes,
    code: str,
    now: float,
    *,
    window: int,
    drift: int = 0,
    digits: int = 6,
    algorithm: str = "SHA1",
    period: int = 30,
    t0: int = 0,
) -> Match | None:
    """Match `code` in the window either side of the expected step, centred on the token's last observed drift.

    Steps are tried nearest-first so that, with a small window, the most likely step wins.
    `offset` of the result is relative to the clock's step (not the drifted one): store it as the new drift.
    """
    if not _well_formed(code, digits):
        return None
    current = time_step(now, period, t0)
    return _first_match(secret, code, _steps(current + drift, window), current, digits, algorithm)


def find_hotp(secret: bytes, matches: Callable[[str], bool], counter: int, lookahead: int, digits: int = 6,
              algorithm: str = "SHA1") -> Match | None:
    """verify_hotp() for a code the client did not send but proved it knows (CHAP, MS-CHAP): the first counter whose
    code `matches`."""
    return _first_found(secret, matches, range(counter, counter + lookahead + 1), counter, digits, algorithm)


def find_totp(secret: bytes, matches: Callable[[str], bool], now: float, *, window: int, drift: int = 0,
              digits: int = 6, algorithm: str = "SHA1", period: int = 30, t0: int = 0) -> Match | None:
    """verify_totp() for a code the client proved it knows: the steps of the window, in the same order."""
    current = time_step(now, period, t0)
    return _first_found(secret, matches, _steps(current + drift, window), current, digits, algorithm)


def _steps(centre: int, window: int) -> list[int]:
    """The steps of a TOTP window, nearest-first."""
    steps = [centre]
    for d in range(1, window + 1):
        steps += [centre - d, centre + d]
    return steps


def resync_hotp(
    secret: bytes, code1: str, code2: str, counter: int, search: int, digits: int = 6, algorithm: str = "SHA1"
) -> Match | None:
    """Find two consecutive counters i, i+1 (i in counter..counter+search) producing code1 then code2.

    Returns the match of code2 (the caller stores value+1 as the next counter).
    """
    if not (_well_formed(code1, digits) and _well_formed(code2, digits)):
        return None
    for i in range(counter, counter + search + 1):
        if hmac.compare_digest(hotp(secret, i, digits, algorithm), code1) and hmac.compare_digest(
            hotp(secret, i + 1, digits, algorithm), code2
        ):
            return Match(i + 1, i + 1 - counter)
    return None


def resync_totp(
    secret: bytes,
    code1: str,
    code2: str,
    now: float,
    search: int,
    digits: int = 6,
    algorithm: str = "SHA1",
    period: int = 30,
    t0: int = 0,
) -> Match | None:
    """Find consecutive steps s, s+1 within `search` steps of now producing code1 then code2 (a clock far off).

    Returns the match of code2; its offset is the token's new drift.
    """
    if not (_well_formed(code1, digits) and _well_formed(code2, digits)):
        return None
    current = time_step(now, period, t0)
    for s in range(current - search, current + search + 1):
        if hmac.compare_digest(hotp(secret, s, digits, algorithm), code1) and hmac.compare_digest(
            hotp(secret, s + 1, digits, algorithm), code2
        ):
            return Match(s + 1, s + 1 - current)
    return None


def decode_base32(text: str) -> bytes:
    """Base32 as authenticator apps and admins write it: any case, spaces/dashes allowed, padding optional."""
    cleaned = re.sub(r"[\s-]", "", text).upper().rstrip("=")
    if not cleaned or not re.fullmatch(r"[A-Z2-7]+", cleaned):
        raise InputError("secret is not valid base32 (letters A-Z and digits 2-7)")
    try:
        raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except binascii.Error:
        raise InputError("secret is not valid base32 (bad length)") from None
    if len(raw) < 10:
        raise InputError("secret is too short: at least 80 bits (16 base32 characters) are required")
    return raw


def encode_base32(secret: bytes) -> str:
    return base64.b32encode(secret).decode().rstrip("=")


def _well_formed(code: str, digits: int) -> bool:
    return len(code) == digits and code.isascii() and code.isdigit()


def _first_match(
    secret: bytes, code: str, candidates: Iterable[int], reference: int, digits: int, algorithm: str
) -> Match | None:
    for value in candidates:
        if value < 0:
            continue
        if hmac.compare_digest(hotp(secret, value, digits, algorithm), code):
            return Match(value, value - reference)
    return None


def _first_found(secret: bytes, matches: Callable[[str], bool], candidates: Iterable[int], reference: int,
                 digits: int, algorithm: str) -> Match | None:
    for value in candidates:
        if value >= 0 and matches(hotp(secret, value, digits, algorithm)):
            return Match(value, value - reference)
    return None
