"""Verification policy, sans-I/O: given the clock, the user's and tokens' state and a code, decide and say what changes.

Nothing here reads or writes the store; the service applies the returned changes in one transaction. `Policy` holds
the [policy] settings (otpcore.config reads them from the file).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from . import oath
from .decision import Reason

if TYPE_CHECKING:
    from .store.rows import TokenRow

__all__ = [
    "CLEAR",
    "OTP_TYPES",
    "CodeCheck",
    "FailureState",
    "OtpToken",
    "Policy",
    "ThrottleState",
    "check_code",
    "check_response",
    "effective",
    "is_locked",
    "locked_until",
    "lockout_duration",
    "record_failure",
    "resync",
    "throttle_failure",
    "throttle_rate",
    "throttled",
]

OTP_TYPES = ("totp", "hotp")


@dataclass(frozen=True)
class Policy:
    totp_window: int = 1  # steps accepted either side of the expected one (centred on the token's drift)
    # How far (in steps) a login may move a TOTP token's recorded drift; None: totp_window. Only `token resync` moves
    # it further, so a run of codes from the future cannot walk the window away from the token's real clock.
    totp_max_drift: int | None = None
    hotp_lookahead: int = 10
    resync_window: int = 1000  # steps (TOTP, either side) or counters (HOTP, ahead) searched by `token resync`
    max_failures: int = 5  # consecutive failed logins (wrong password or wrong code) before a lockout
    lockout_seconds: int = 300  # the first lockout; 0 = locked until `otp-admin user unlock`
    lockout_max_seconds: int = 86_400  # each lockout in a row doubles the previous one, up to this
    no_token: str = "reject"  # reject | accept
    challenge: bool = True
    challenge_timeout: int = 120
    pam_service: str = "login"
    # A user with the right password and no token is told where to enrol one (web.public_url), when [web] lets
    # users enrol themselves (self_enrollment open or invite): the RADIUS Reply-Message, the PAM message.
    no_token_hint: bool = True
    # Failed logins one client (a NAS, or a PAM service and remote host) may cause: at most client_max_failures
    # within client_failure_window seconds (a leaky bucket), then its requests are refused until the rate falls.
    client_max_failures: int = 100  # 0 = no limit
    client_failure_window: int = 60
    # email/sms tokens: defaults of the per-token knobs (see otpcore.oob)
    oob_length: int = 6  # 4-10 characters
    oob_alphabet: str = "digits"  # digits | alphanumeric (letters and digits without look-alikes)
    oob_validity: int = 300  # seconds a sent code stays valid
    oob_max_attempts: int = 3  # wrong answers a code survives
    oob_resend_interval: int = 30  # seconds between two sends to one token; doubles with each send in the hour
    oob_max_per_hour: int = 5  # codes sent to one user in any hour ...
    oob_max_per_day: int = 10  # ... and in any day

    def __post_init__(self) -> None:
        if self.totp_max_drift is None:  # the default follows the window
            object.__setattr__(self, "totp_max_drift", self.totp_window)

    @property
    def drift_cap(self) -> int:
        return self.totp_window if self.totp_max_drift is None else self.totp_max_drift


class OtpToken(NamedTuple):
    """A TOTP/HOTP token as the maths needs it: its row (parameters and state) and its secret, unsealed."""

    row: TokenRow
    secret: bytes


class FailureState(NamedTuple):
    failures: int  # consecutive failed logins since the last success or lockout
    last_bad: bytes | None  # fingerprint of the last failed entry: the same one again counts once
    locked_at: float | None
    lockouts: int = 0  # lockouts in a row (since the last success or unlock): each one lasts twice the previous


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


class ThrottleState(NamedTuple):
    """A client's failed logins as a leaky bucket: `level` failures at `updated`, draining at the allowed rate."""

    level: float
    updated: float


CLEAR = FailureState(failures=0, last_bad=None, locked_at=None, lockouts=0)
NO_THROTTLE = ThrottleState(0.0, 0.0)


# -- lockout ----------------------------------------------------------------------------------------------------------


def lockout_duration(lockouts: int, policy: Policy) -> float | None:
    """How long the `lockouts`-th lockout in a row lasts (None: until unlocked)."""
    if policy.lockout_seconds == 0:
        return None
    doubled = policy.lockout_seconds * 2 ** min(max(lockouts - 1, 0), 40)
    return float(min(doubled, max(policy.lockout_max_seconds, policy.lockout_seconds)))


def locked_until(state: FailureState, policy: Policy) -> float | None:
    """When the current lockout ends (inf: never by itself); None when the state holds no lockout."""
    if state.locked_at is None:
        return None
    duration = lockout_duration(max(state.lockouts, 1), policy)
    return float("inf") if duration is None else state.locked_at + duration


def is_locked(state: FailureState, policy: Policy, now: float) -> bool:
    until = locked_until(state, policy)
    return until is not None and now < until


def effective(state: FailureState, policy: Policy, now: float) -> FailureState:
    """A lock that has run out is gone, and so is the count that led to it; the number of lockouts in a row stays,
    so the next one lasts longer."""
    if state.locked_at is not None and not is_locked(state, policy, now):
        return CLEAR._replace(lockouts=state.lockouts)
    return state


def record_failure(state: FailureState, fingerprint: bytes, policy: Policy, now: float) -> FailureState:
    """One more consecutive failure, unless it is the same wrong entry as the last one (that counts once)."""
    state = effective(state, policy, now)
    if state.last_bad is not None and state.last_bad == fingerprint:
        return state
    failures = state.failures + 1
    if failures >= policy.max_failures and state.locked_at is None:
        return FailureState(failures, fingerprint, now, state.lockouts + 1)
    return state._replace(failures=failures, last_bad=fingerprint)


# -- per-client throttle ----------------------------------------------------------------------------------------------


def throttle_rate(policy: Policy) -> float:
    """Failed logins per second a client's bucket drains by."""
    return policy.client_max_failures / max(policy.client_failure_window, 1)


def _drained(state: ThrottleState, policy: Policy, now: float) -> float:
    return max(0.0, state.level - max(0.0, now - state.updated) * throttle_rate(policy))


def throttled(state: ThrottleState, policy: Policy, now: float) -> bool:
    """Whether the client has used up its failed logins for now: no room for one more."""
    return policy.client_max_failures > 0 and _drained(state, policy, now) > policy.client_max_failures - 1


def throttle_failure(state: ThrottleState, policy: Policy, now: float) -> ThrottleState:
    """The bucket after one more failure (the store counts it so, in one statement: Store.count_throttle_failure)."""
    return ThrottleState(_drained(state, policy, now) + 1, now)


# -- codes ------------------------------------------------------------------------------------------------------------


def check_code(tokens: Sequence[OtpToken], code: str, policy: Policy, now: float) -> CodeCheck:
    """Try the code on every token of the right length; a fresh match wins over a replayed one."""
    return _check(tokens, code, policy, now)


def check_response(tokens: Sequence[OtpToken], matches: Callable[[str], bool], policy: Policy, now: float
                   ) -> CodeCheck:
    """check_code() for a code the client proved it knows without sending it (CHAP, MS-CHAP): every code each token
    accepts now (the TOTP window, the HOTP look-ahead) is tried with `matches`, in the same order."""
    return _check(tokens, matches, policy, now)


def _check(tokens: Sequence[OtpToken], probe: str | Callable[[str], bool], policy: Policy, now: float) -> CodeCheck:
    """`probe`: the code sent, or what tells whether a code is the one the client proved it knows."""
    replay: CodeCheck | None = None
    for row, secret in tokens:
        if isinstance(probe, str) and len(probe) != row.digits:
            continue
        hit = _hit(row, secret, probe, policy, now)
        if hit is None:
            continue
        if row.type == "hotp":
            return CodeCheck(True, Reason.OK, row.id, "hotp", row.counter, hit.value + 1)
        if hit.value > row.last_step:
            # A login keeps the drift within the cap (or within the drift a resync set): it may shrink, never grow.
            drift = hit.offset if abs(hit.offset) <= max(policy.drift_cap, abs(row.drift)) else row.drift
            return CodeCheck(True, Reason.OK, row.id, "totp", row.last_step, hit.value, drift)
        replay = CodeCheck(False, Reason.REPLAY, row.id)
    return replay or CodeCheck(False, Reason.WRONG_CODE)


def _hit(row: TokenRow, secret: bytes, probe: str | Callable[[str], bool], policy: Policy, now: float
         ) -> oath.Match | None:
    """Where the token's codes (the HOTP look-ahead, the TOTP window around the drift) meet the probe."""
    if row.type == "hotp":
        lookahead = row.window if row.window is not None else policy.hotp_lookahead
        if isinstance(probe, str):
            return oath.verify_hotp(secret, probe, row.counter, lookahead, row.digits, row.algorithm)
        return oath.find_hotp(secret, probe, row.counter, lookahead, row.digits, row.algorithm)
    window = row.window if row.window is not None else policy.totp_window
    if isinstance(probe, str):
        return oath.verify_totp(secret, probe, now, window=window, drift=row.drift, digits=row.digits,
                                algorithm=row.algorithm, period=row.period, t0=row.t0)
    return oath.find_totp(secret, probe, now, window=window, drift=row.drift, digits=row.digits,
                          algorithm=row.algorithm, period=row.period, t0=row.t0)


def resync(tokens: Sequence[OtpToken], code1: str, code2: str, policy: Policy, now: float) -> CodeCheck:
    """Two consecutive codes over the wide resync range: re-centre a TOTP token's drift or move an HOTP counter."""
    for row, secret in tokens:
        if row.type == "hotp":
            hit = oath.resync_hotp(secret, code1, code2, row.counter, policy.resync_window, row.digits, row.algorithm)
            if hit is not None:
                return CodeCheck(True, Reason.OK, row.id, "hotp", row.counter, hit.value + 1)
        else:
            hit = oath.resync_totp(secret, code1, code2, now, policy.resync_window, row.digits, row.algorithm,
                                   row.period, row.t0)
            if hit is not None and hit.value > row.last_step:
                return CodeCheck(True, Reason.OK, row.id, "totp", row.last_step, hit.value, hit.offset)
    return CodeCheck(False, Reason.WRONG_CODE)
