"""Out-of-band codes (email and sms tokens), sans-I/O: the knobs, the code, its hash and the decisions about it.

A code is made on the server when a user has passed the first factor, sent to the address in the user's profile,
and kept only as a keyed hash in a challenge row, with an expiry and an attempt count. Nothing here reads the store
or the network; the service applies the outcomes.

Challenge rows of out-of-band codes use the `attempts` column for the code's life: 0..n wrong answers so far, or
`USED` once the code was accepted. A used or exhausted row is kept until the code would have expired, so a second
use of the same code is refused as a replay (or as too many attempts) rather than as an unknown code.
"""

from __future__ import annotations

import enum
import hmac
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import InputError

if TYPE_CHECKING:
    from .policy import Policy

__all__ = [
    "ALPHABETS",
    "CHANNELS",
    "LENGTH_RANGE",
    "OPTION_BOUNDS",
    "OPTION_KEYS",
    "USED",
    "CodeOutcome",
    "Deliverer",
    "OobSettings",
    "Outgoing",
    "check_code",
    "code_hash",
    "dump_options",
    "dump_sends",
    "generate_code",
    "last_sent",
    "load_options",
    "load_sends",
    "looks_like_code",
    "normalize_code",
    "resend_wait",
    "send_wait",
    "settings_for",
    "validate_options",
]

CHANNELS = ("email", "sms")  # the token types whose codes are sent
LENGTH_RANGE = (4, 10)
ALPHABETS: Mapping[str, str] = {
    "digits": "0123456789",
    # Letters and digits without look-alikes: no 0/O, 1/I/L. Codes are shown and compared in upper case.
    "alphanumeric": "23456789ABCDEFGHJKMNPQRSTUVWXYZ",
}
USED = -1  # `attempts` of a challenge row whose code was accepted
MAX_VALIDITY = 86_400
MAX_ATTEMPTS = 100
MAX_RESEND_INTERVAL = 86_400

# Per-token option -> (policy field, lowest, highest); "alphabet" is a choice.
OPTION_BOUNDS: Mapping[str, tuple[str, int, int]] = {
    "length": ("oob_length", *LENGTH_RANGE),
    "validity": ("oob_validity", 1, MAX_VALIDITY),
    "max_attempts": ("oob_max_attempts", 1, MAX_ATTEMPTS),
    "resend_interval": ("oob_resend_interval", 0, MAX_RESEND_INTERVAL),
}
OPTION_KEYS = (*OPTION_BOUNDS, "alphabet")


@dataclass(frozen=True, slots=True)
class OobSettings:
    """The knobs in force for one token: its own options over the [policy] oob_* defaults."""

    length: int = 6
    alphabet: str = "digits"
    validity: int = 300  # seconds a code stays valid
    max_attempts: int = 3  # wrong answers a code survives; the last one kills it
    resend_interval: int = 30  # seconds between two sends to one token


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One code to send through one channel."""

    channel: str  # "email" | "sms"
    address: str  # the e-mail address or phone number from the user's profile
    user: str
    code: str = field(repr=False)
    validity: int = 300  # seconds, for the {minutes} / {seconds} placeholders


class Deliverer(Protocol):
    """What the service needs of otpcore.delivery.Sender (tests may pass their own)."""

    def send_all(self, messages: Sequence[Outgoing]) -> list[str | None]:
        """Send every message, in bounded time; per message None (sent) or a one-line error (never the code)."""
        ...


class CodeOutcome(enum.Enum):
    ACCEPT = "accept"
    WRONG = "wrong"  # one more wrong answer; the code lives on
    EXHAUSTED = "exhausted"  # this wrong answer was the last one allowed, or there were too many before
    EXPIRED = "expired"
    USED = "used"  # the code was accepted before


def validate_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check per-token knobs (length, alphabet, validity, max_attempts, resend_interval). Raises InputError."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key == "alphabet":
            if value not in ALPHABETS:
                raise InputError(f"alphabet must be one of {', '.join(ALPHABETS)}, not {value!r}")
            out[key] = value
            continue
        if key not in OPTION_BOUNDS:
            raise InputError(f"unknown option for email/sms tokens: {key!r}")
        _, low, high = OPTION_BOUNDS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"{key.replace('_', '-')} must be between {low} and {high}, not {value!r}")
        out[key] = value
    return out


def load_options(text: str | None) -> dict[str, Any]:
    """The tokens.options JSON of an out-of-band token (bad or foreign content counts as no options)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    try:
        return validate_options({k: v for k, v in data.items() if k in OPTION_KEYS})
    except InputError:
        return {}


def last_sent(text: str | None) -> float | None:
    """When a code was last sent to this token: `last_sent` in the token's options JSON (set by the service)."""
    if not text:
        return None
    try:
        value = json.loads(text).get("last_sent")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def dump_options(options: Mapping[str, Any]) -> str | None:
    return json.dumps(dict(sorted(options.items())), separators=(",", ":")) if options else None


def settings_for(policy: Policy, options: Mapping[str, Any]) -> OobSettings:
    """A token's own options win over the policy's defaults."""
    values: dict[str, Any] = {key: options.get(key, getattr(policy, field))
                              for key, (field, _, _) in OPTION_BOUNDS.items()}
    values["alphabet"] = options.get("alphabet", policy.oob_alphabet)
    return OobSettings(**values)


def generate_code(settings: OobSettings, choice: Callable[[str], str] = secrets.choice) -> str:
    alphabet = ALPHABETS[settings.alphabet]
    return "".join(choice(alphabet) for _ in range(settings.length))


def normalize_code(code: str) -> str:
    """What a person typed, made comparable: white space and dashes dropped, letters in upper case."""
    return "".join(code.split()).replace("-", "").upper()


def looks_like_code(code: str, settings: OobSettings) -> bool:
    """True if `code` (normalized) could be a code of these settings: the right length and alphabet."""
    alphabet = ALPHABETS[settings.alphabet]
    return len(code) == settings.length and all(c in alphabet for c in code)


def code_hash(fingerprint: Callable[..., bytes], user_id: int, code: str) -> bytes:
    """The keyed hash stored instead of the code (Sealer.fingerprint: HMAC-SHA256 under a key from the key file)."""
    return fingerprint(b"oob-code", b"%d" % user_id, normalize_code(code).encode())


def check_code(*, stored_hash: bytes, given_hash: bytes, attempts: int, expires: float, settings: OobSettings,
               now: float) -> tuple[CodeOutcome, int]:
    """Judge one answer to one code. Returns the outcome and the row's new `attempts`."""
    matches = hmac.compare_digest(stored_hash, given_hash)
    if attempts == USED:
        return (CodeOutcome.USED if matches else CodeOutcome.WRONG), attempts
    if attempts >= settings.max_attempts:
        return CodeOutcome.EXHAUSTED, attempts
    if now >= expires:
        return CodeOutcome.EXPIRED, attempts
    if matches:
        return CodeOutcome.ACCEPT, USED
    attempts += 1
    return (CodeOutcome.EXHAUSTED if attempts >= settings.max_attempts else CodeOutcome.WRONG), attempts


def resend_wait(last_sent: float | None, settings: OobSettings, now: float) -> float:
    """Seconds still to wait before a new code may be sent to this token (0: send now)."""
    if last_sent is None or settings.resend_interval <= 0:
        return 0.0
    wait = last_sent + settings.resend_interval - now
    return wait if wait > 0 else 0.0


# -- how often one user is sent codes ---------------------------------------------------------------------------------
# Every send to a user is remembered for a day (users.oob_sends). A code may go out once the gap since the last one
# is over, a gap that doubles with each send in the last hour (resend_interval, 2x, 4x ...), and while the user has
# had fewer than policy.oob_max_per_hour codes in the hour and oob_max_per_day in the day.

_HOUR = 3600.0
_DAY = 86_400.0


def load_sends(text: str | None) -> list[float]:
    """The send times of users.oob_sends (bad content counts as none)."""
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    return sorted(float(t) for t in data if isinstance(t, int | float) and not isinstance(t, bool))


def dump_sends(sends: Sequence[float], now: float) -> str:
    """The send times to keep: those of the last day."""
    return json.dumps([t for t in sends if t > now - _DAY])


def send_wait(sends: Sequence[float], settings: OobSettings, policy: Policy, now: float) -> tuple[float, bool]:
    """(seconds to wait before a code may be sent to this user, whether a per-hour or per-day cap is the reason)."""
    hour = [t for t in sends if t > now - _HOUR]
    day = [t for t in sends if t > now - _DAY]
    if len(day) >= policy.oob_max_per_day:
        return day[-policy.oob_max_per_day] + _DAY - now, True
    if len(hour) >= policy.oob_max_per_hour:
        return hour[-policy.oob_max_per_hour] + _HOUR - now, True
    if not hour or settings.resend_interval <= 0:
        return 0.0, False
    gap = settings.resend_interval * 2 ** min(len(hour) - 1, 20)
    return max(0.0, hour[-1] + gap - now), False
