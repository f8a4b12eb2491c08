"""The sans-I/O verification policy: lockout arithmetic and code checks over a user's tokens, with an explicit clock."""

from __future__ import annotations

from dataclasses import replace

from otpcore import oath
from otpcore import policy as pol
from otpcore.config import Policy
from otpcore.decision import Reason
from otpcore.store.rows import TokenRow

from .helpers import SEED20, SEED32

NOW = 1_700_000_000.0
STEP = oath.time_step(NOW)
POLICY = Policy(max_failures=3, lockout_seconds=300, totp_window=1, hotp_lookahead=10)

def token(secret: bytes, **fields: object) -> pol.OtpToken:
    """A token's row with `fields` over a 6-digit SHA1 TOTP's defaults, and its secret."""
    row = TokenRow(id=1, user_id=1, type="totp", algorithm="SHA1", digits=6, period=30, t0=0, counter=0,
                   last_step=-1, drift=0, window=None, secret=None, issuer=None, active=True, created=0.0,
                   options=None, seal=2)
    return pol.OtpToken(row._replace(**fields), secret)


def changed(t: pol.OtpToken, **fields: object) -> pol.OtpToken:
    return pol.OtpToken(t.row._replace(**fields), t.secret)


TOTP = token(SEED20)
HOTP = token(SEED32, id=2, type="hotp", algorithm="SHA256", digits=8, counter=5)


def fp(code: str) -> bytes:
    return b"fp:" + code.encode()


# -- lockout -----------------------------------------------------------------------------------------------------------


def test_not_locked_without_a_lock() -> None:
    assert not pol.is_locked(pol.CLEAR, POLICY, NOW)
    assert not pol.is_locked(pol.FailureState(2, fp("1"), None), POLICY, NOW)


def test_lock_runs_out_after_lockout_seconds() -> None:
    locked = pol.FailureState(3, fp("3"), NOW)
    assert pol.is_locked(locked, POLICY, NOW)
    assert pol.is_locked(locked, POLICY, NOW + 299.9)
    assert not pol.is_locked(locked, POLICY, NOW + 300)
    assert pol.effective(locked, POLICY, NOW + 300) == pol.CLEAR  # the count that led to it is gone too


def test_lockout_seconds_zero_stays_locked() -> None:
    forever = replace(POLICY, lockout_seconds=0)
    locked = pol.FailureState(3, fp("3"), NOW)
    assert pol.is_locked(locked, forever, NOW + 10**9)
    assert pol.effective(locked, forever, NOW + 10**9) == locked


def test_record_failure_locks_at_max_failures() -> None:
    state = pol.CLEAR
    for i, code in enumerate(["111111", "222222"], start=1):
        state = pol.record_failure(state, fp(code), POLICY, NOW + i)
        assert state.failures == i and state.locked_at is None
        assert not pol.is_locked(state, POLICY, NOW + i)
    state = pol.record_failure(state, fp("333333"), POLICY, NOW + 3)
    assert state == pol.FailureState(3, fp("333333"), NOW + 3, lockouts=1)  # the first lockout in a row
    assert pol.is_locked(state, POLICY, NOW + 3)


def test_same_wrong_code_repeated_counts_once() -> None:
    state = pol.record_failure(pol.CLEAR, fp("111111"), POLICY, NOW)
    for _ in range(10):
        state = pol.record_failure(state, fp("111111"), POLICY, NOW)
    assert state.failures == 1 and state.locked_at is None
    # another code counts, and so does the first one again after it
    state = pol.record_failure(state, fp("222222"), POLICY, NOW)
    state = pol.record_failure(state, fp("111111"), POLICY, NOW)
    assert state.failures == 3 and state.locked_at == NOW


def test_failures_after_an_expired_lock_start_again_from_one() -> None:
    locked = pol.FailureState(3, fp("333333"), NOW)
    state = pol.record_failure(locked, fp("333333"), POLICY, NOW + 301)
    assert state == pol.FailureState(1, fp("333333"), None)


# -- check_code --------------------------------------------------------------------------------------------------------


def totp_code(step: int) -> str:
    return oath.hotp(SEED20, step)


def test_check_code_totp_accept_returns_the_step_and_drift() -> None:
    result = pol.check_code([TOTP], totp_code(STEP + 1), POLICY, NOW)
    assert result == pol.CodeCheck(True, Reason.OK, 1, "totp", expected=-1, new_value=STEP + 1, drift=1)


def test_check_code_totp_step_not_newer_is_a_replay() -> None:
    used = changed(TOTP, last_step=STEP)
    assert pol.check_code([used], totp_code(STEP), POLICY, NOW).reason is Reason.REPLAY
    # an older step inside the window was never used, but it is not newer than the last accepted one either
    assert pol.check_code([used], totp_code(STEP - 1), POLICY, NOW).reason is Reason.REPLAY
    assert pol.check_code([used], totp_code(STEP + 1), POLICY, NOW).ok


def test_check_code_wrong_code() -> None:
    result = pol.check_code([TOTP, HOTP], "000000", POLICY, NOW)
    wrong = totp_code(STEP + 5)
    assert not result.ok and result.reason is Reason.WRONG_CODE and result.token_id is None
    assert pol.check_code([TOTP], wrong, POLICY, NOW).reason is Reason.WRONG_CODE


def test_check_code_hotp_moves_past_the_match() -> None:
    code = oath.hotp(SEED32, 8, 8, "SHA256")  # 3 ahead of the expected counter 5
    result = pol.check_code([HOTP], code, POLICY, NOW)
    assert result == pol.CodeCheck(True, Reason.OK, 2, "hotp", expected=5, new_value=9)
    # an already used counter is just a wrong code
    used = oath.hotp(SEED32, 4, 8, "SHA256")
    assert pol.check_code([HOTP], used, POLICY, NOW).reason is Reason.WRONG_CODE


def test_check_code_hotp_lookahead_from_policy_and_token_window() -> None:
    far = oath.hotp(SEED32, 5 + 11, 8, "SHA256")
    assert not pol.check_code([HOTP], far, POLICY, NOW).ok
    assert pol.check_code([HOTP], far, replace(POLICY, hotp_lookahead=11), NOW).ok
    assert pol.check_code([changed(HOTP, window=11)], far, POLICY, NOW).ok  # a per-token window wins
    assert not pol.check_code([changed(HOTP, window=2)], oath.hotp(SEED32, 8, 8, "SHA256"), POLICY, NOW).ok


def test_check_code_totp_per_token_window() -> None:
    assert not pol.check_code([TOTP], totp_code(STEP + 3), POLICY, NOW).ok
    assert pol.check_code([changed(TOTP, window=3)], totp_code(STEP + 3), POLICY, NOW).ok


def test_check_code_several_tokens() -> None:
    # a user with a 6-digit TOTP token and an 8-digit HOTP token: each token's code is checked on its own token
    assert pol.check_code([TOTP, HOTP], totp_code(STEP), POLICY, NOW).token_id == 1
    assert pol.check_code([TOTP, HOTP], oath.hotp(SEED32, 5, 8, "SHA256"), POLICY, NOW).token_id == 2
    # two TOTP tokens of the same length
    other = pol.OtpToken(TOTP.row._replace(id=3, algorithm="SHA256"), SEED32)
    code = oath.totp(SEED32, NOW, algorithm="SHA256")
    assert pol.check_code([TOTP, other], code, POLICY, NOW).token_id == 3


def test_check_code_fresh_match_wins_over_a_replay() -> None:
    used = changed(TOTP, last_step=STEP)
    fresh = changed(TOTP, id=7)  # same secret, never used
    assert pol.check_code([used, fresh], totp_code(STEP), POLICY, NOW).token_id == 7


def test_check_code_skips_tokens_of_another_length() -> None:
    eight = changed(TOTP, digits=8)
    assert not pol.check_code([eight], totp_code(STEP), POLICY, NOW).ok
    assert pol.check_code([eight], oath.hotp(SEED20, STEP, 8), POLICY, NOW).ok


def test_check_code_no_tokens() -> None:
    assert pol.check_code([], totp_code(STEP), POLICY, NOW).reason is Reason.WRONG_CODE


# -- resync ------------------------------------------------------------------------------------------------------------


def test_resync_totp_records_the_new_drift() -> None:
    c1, c2 = totp_code(STEP - 40), totp_code(STEP - 39)
    result = pol.resync([TOTP], c1, c2, POLICY, NOW)
    assert result == pol.CodeCheck(True, Reason.OK, 1, "totp", expected=-1, new_value=STEP - 39, drift=-39)


def test_resync_totp_refuses_steps_not_newer() -> None:
    used = changed(TOTP, last_step=STEP)
    assert not pol.resync([used], totp_code(STEP - 1), totp_code(STEP), POLICY, NOW).ok


def test_resync_hotp_moves_the_counter() -> None:
    c1, c2 = oath.hotp(SEED32, 300, 8, "SHA256"), oath.hotp(SEED32, 301, 8, "SHA256")
    assert pol.resync([HOTP], c1, c2, POLICY, NOW) == pol.CodeCheck(True, Reason.OK, 2, "hotp", 5, 302)
    assert not pol.resync([HOTP], c1, c2, replace(POLICY, resync_window=100), NOW).ok
