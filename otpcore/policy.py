"""Verification policy, sans-I/O: given the clock, the user's and tokens' state and a code, decide and say what changes.

Nothing here reads or writes the store; the service applies the returned changes in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from . import oath
from .config import Policy
from .decision import Reason

__all__ = ["CodeCheck", "FailureState", "OtpToken", "check_code", "is_locked", "record_failure", "resync"]

OTP_TYPES = ("totp", "hotp")


class OtpToken(NamedTuple):
    """What the maths needs of a TOTP/HOTP token, with its secret unsealed."""

    id: int
    type: str
    secret: bytes
    algorithm: str
    digits: int
    period: int
    t0: int
    counter: int
    last_step: int
    drift: int
    window: int | None


class FailureState(NamedTuple):
    failures: int
    last_bad: bytes | None
    locked_at: float | None


class CodeCheck(NamedTuple):
    """The outcome of checking one code against a user's tokens.

    On success `token_id` names the token and `new_value` its new counter (HOTP: next expected) or accepted step
    (TOTP, with `drift`); `expected` is the value read, for the compare-and-set.
    """

    ok: bool
    reason: Reason
    token_id: int | None = None
    kind: str | None = None
    expected: int = 0
    new_value: int = 0
    drift: int = 0


CLEAR = FailureState(failures=0, last_bad=None, locked_at=None)


def is_locked(state: FailureState, policy: Policy, now: float) -> bool:
    if state.locked_at is None:
        return False
    return policy.lockout_seconds == 0 or now < state.locked_at + policy.lockout_seconds


def effective(state: FailureState, policy: Policy, now: float) -> FailureState:
    """A lock that has run out is gone, and so is the count that led to it."""
    if state.locked_at is not None and not is_locked(state, policy, now):
        return CLEAR
    return state


def record_failure(state: FailureState, fingerprint: bytes, policy: Policy, now: float) -> FailureState:
    """One more consecutive failure, unless it is the same wrong code as the last one (that counts once)."""
    state = effective(state, policy, now)
    if state.last_bad is not None and state.last_bad == fingerprint:
        return state
    failures = state.failures + 1
    locked_at = now if failures >= policy.max_failures else state.locked_at
    return FailureState(failures=failures, last_bad=fingerprint, locked_at=locked_at)


def check_code(tokens: Sequence[OtpToken], code: str, policy: Policy, now: float) -> CodeCheck:
    """Try the code on every token of the right length; a fresh match wins over a replayed one."""
    replay: CodeCheck | None = None
    for token in tokens:
        if len(code) != token.digits:
            continue
        if token.type == "hotp":
            lookahead = token.window if token.window is not None else policy.hotp_lookahead
            hit = oath.verify_hotp(token.secret, code, token.counter, lookahead, token.digits, token.algorithm)
            if hit is not None:
                return CodeCheck(True, Reason.OK, token.id, "hotp", token.counter, hit.value + 1)
        else:
            window = token.window if token.window is not None else policy.totp_window
            hit = oath.verify_totp(token.secret, code, now, window=window, drift=token.drift, digits=token.digits,
                                   algorithm=token.algorithm, period=token.period, t0=token.t0)
            if hit is not None:
                if hit.value > token.last_step:
                    return CodeCheck(True, Reason.OK, token.id, "totp", token.last_step, hit.value, hit.offset)
                replay = CodeCheck(False, Reason.REPLAY, token.id)
    return replay or CodeCheck(False, Reason.WRONG_CODE)


def resync(tokens: Sequence[OtpToken], code1: str, code2: str, policy: Policy, now: float) -> CodeCheck:
    """Two consecutive codes over the wide resync range: re-centre a TOTP token's drift or move an HOTP counter."""
    for token in tokens:
        if token.type == "hotp":
            hit = oath.resync_hotp(token.secret, code1, code2, token.counter, policy.resync_window, token.digits,
                                   token.algorithm)
            if hit is not None:
                return CodeCheck(True, Reason.OK, token.id, "hotp", token.counter, hit.value + 1)
        else:
            hit = oath.resync_totp(token.secret, code1, code2, now, policy.resync_window, token.digits,
                                   token.algorithm, token.period, token.t0)
            if hit is not None and hit.value > token.last_step:
                return CodeCheck(True, Reason.OK, token.id, "totp", token.last_step, hit.value, hit.offset)
    return CodeCheck(False, Reason.WRONG_CODE)
