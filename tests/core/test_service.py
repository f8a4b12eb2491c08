"""The verification service against a real store, with an explicit clock: lockout, replay, challenges, first factor."""

from __future__ import annotations

import sqlite3

import pytest

from otpcore import oath
from otpcore.decision import Reason, Verdict
from otpcore.service import Verifier

from .helpers import SEED20, SEED32, Installation

NOW = 1_700_000_000.0
STEP = oath.time_step(NOW)
DOOR = {"door": "radius", "client": "vpn"}


def code(step: int) -> str:
    return oath.hotp(SEED20, step)


@pytest.fixture
def alice(inst: Installation) -> Installation:
    """alice, password b"password", one 6-digit SHA1 TOTP token on SEED20."""
    inst.add_user("alice", b"password")
    inst.add_token("alice", type="totp", secret=SEED20)
    return inst


def verify(v: Verifier, c: str, now: float = NOW, user: str = "alice") -> tuple[Verdict, Reason]:
    d = v.verify_code(user, c, now=now, **DOOR)
    return d.verdict, d.reason


ACCEPT = (Verdict.ACCEPT, Reason.OK)
WRONG = (Verdict.REJECT, Reason.WRONG_CODE)
REPLAY = (Verdict.REJECT, Reason.REPLAY)
LOCKED = (Verdict.LOCKED, Reason.LOCKED)


# -- codes, replay, drift ----------------------------------------------------------------------------------------------


def test_accept_then_replay_then_newer(alice: Installation) -> None:
    v = alice.verifier()
    assert verify(v, code(STEP)) == ACCEPT
    assert verify(v, code(STEP)) == REPLAY
    assert verify(v, code(STEP - 1)) == REPLAY  # inside the window but not newer than the accepted step
    assert verify(v, code(STEP), NOW + 30) == REPLAY  # still in the window a step later: refused
    assert verify(v, code(STEP + 1), NOW + 30) == ACCEPT


def test_wrong_code_and_malformed_code(alice: Installation) -> None:
    v = alice.verifier()
    assert verify(v, code(STEP + 5)) == WRONG
    assert verify(v, "12ab56") == WRONG
    # an empty code asks for one (a challenge, as for a user with an email token), whatever the user's tokens
    assert verify(v, "") == (Verdict.CHALLENGE, Reason.CHALLENGE_SENT)
    assert verify(v, code(STEP)) == ACCEPT


def test_drift_is_tracked(alice: Installation) -> None:
    v = alice.verifier(totp_window=1, totp_max_drift=2)
    assert verify(v, code(STEP + 1)) == ACCEPT  # the token's clock runs one step ahead
    token = alice.token(1)
    assert (token.last_step, token.drift) == (STEP + 1, 1)
    # the window is now centred on +1: a code two steps ahead of our clock passes, one step behind does not
    assert verify(v, code(STEP + 1 + 2), NOW + 30) == ACCEPT
    assert alice.token(1).drift == 2
    # a step later (clock at STEP + 2) the window is STEP + 3 .. STEP + 5: the clock's own step is out
    assert verify(v, code(STEP + 2), NOW + 60) == WRONG
    assert verify(v, code(STEP + 5), NOW + 60) == ACCEPT


def test_codes_from_the_future_cannot_walk_the_drift(alice: Installation) -> None:
    """Codes for +1, +2, +3 ... steps accepted in turn used to move the window along until the token's own current
    code was refused. A login moves the drift at most policy.totp_max_drift (default totp_window) steps."""
    v = alice.verifier(totp_window=1)
    assert verify(v, code(STEP + 1)) == ACCEPT  # one step ahead: within the window
    assert verify(v, code(STEP + 2)) == ACCEPT  # within the window around the drift of 1 ...
    assert alice.token(1).drift == 1  # ... but the drift stays at the cap
    assert verify(v, code(STEP + 3)) == WRONG  # so the walk ends here
    # the owner's own code, once its step is newer than the ones used up, is accepted and re-centres the window
    assert verify(v, code(STEP + 3), NOW + 90) == ACCEPT
    assert alice.token(1).drift == 0


def test_totp_resync_far_off_clock(alice: Installation) -> None:
    v = alice.verifier(totp_window=1, resync_window=500)
    assert verify(v, code(STEP + 200)) == WRONG
    d = v.resync("alice", code(STEP + 200), code(STEP + 201), now=NOW, **DOOR)
    assert d.verdict is Verdict.ACCEPT and d.token_id == 1
    token = alice.token(1)
    assert (token.last_step, token.drift) == (STEP + 201, 201)
    assert verify(v, code(STEP + 201)) == REPLAY  # the resync consumed its codes
    assert verify(v, code(STEP + 202)) == ACCEPT  # and the window follows the token's clock
    d = v.resync("alice", code(STEP + 600), code(STEP + 601), now=NOW, **DOOR)
    assert (d.verdict, d.reason) == (Verdict.REJECT, Reason.WRONG_CODE)


def test_hotp_lookahead_and_resync(inst: Installation) -> None:
    inst.add_user("bob")
    inst.add_token("bob", type="hotp", secret=SEED32, algorithm="SHA256", digits=8, counter=10)
    v = inst.verifier(hotp_lookahead=5, resync_window=200)

    def h(counter: int) -> str:
        return oath.hotp(SEED32, counter, 8, "SHA256")

    assert verify(v, h(10), user="bob") == ACCEPT
    assert verify(v, h(10), user="bob") == WRONG  # used: the counter moved past it
    assert verify(v, h(14), user="bob") == ACCEPT  # a few counters ahead
    assert inst.token(1).counter == 15
    assert verify(v, h(13), user="bob") == WRONG  # skipped codes are gone
    assert verify(v, h(21), user="bob") == WRONG  # beyond the look-ahead of 5
    d = v.resync("bob", h(100), h(101), now=NOW, **DOOR)
    assert d.verdict is Verdict.ACCEPT
    assert inst.token(1).counter == 102
    assert verify(v, h(102), user="bob") == ACCEPT


def test_hotp_per_token_window(inst: Installation) -> None:
    inst.add_user("bob")
    inst.add_token("bob", type="hotp", secret=SEED20, window=20)
    v = inst.verifier(hotp_lookahead=1)
    assert verify(v, oath.hotp(SEED20, 20), user="bob") == ACCEPT


# -- lockout -----------------------------------------------------------------------------------------------------------


def test_lockout_after_max_failures_refuses_a_correct_code(alice: Installation) -> None:
    v = alice.verifier(max_failures=3, lockout_seconds=300)
    for i, wrong in enumerate(["000001", "000002"]):
        assert verify(v, wrong, NOW + i) == WRONG
    assert verify(v, "000003", NOW + 2) == WRONG  # the third failure locks
    assert alice.user("alice").locked_at == NOW + 2
    assert verify(v, code(STEP), NOW + 3) == LOCKED
    assert alice.token(1).last_step == -1  # the code was not consumed


def test_same_wrong_code_repeated_counts_once(alice: Installation) -> None:
    v = alice.verifier(max_failures=3)
    for _ in range(10):
        assert verify(v, "123456") == WRONG
    assert alice.user("alice").failures == 1
    assert verify(v, code(STEP)) == ACCEPT


def test_correct_code_resets_the_count(alice: Installation) -> None:
    v = alice.verifier(max_failures=3)
    assert verify(v, "000001") == WRONG
    assert verify(v, "000002") == WRONG
    assert verify(v, code(STEP)) == ACCEPT
    user = alice.user("alice")
    assert (user.failures, user.last_bad, user.locked_at) == (0, None, None)
    assert verify(v, "000003", NOW + 30) == WRONG
    assert verify(v, "000004", NOW + 30) == WRONG
    assert verify(v, code(STEP + 1), NOW + 30) == ACCEPT


def test_replays_count_as_failures(alice: Installation) -> None:
    v = alice.verifier(max_failures=2)
    assert verify(v, code(STEP)) == ACCEPT
    assert verify(v, code(STEP)) == REPLAY
    assert verify(v, "000000") == WRONG
    assert verify(v, code(STEP + 1)) == LOCKED


def test_automatic_unlock_after_lockout_seconds(alice: Installation) -> None:
    v = alice.verifier(max_failures=2, lockout_seconds=60)
    assert verify(v, "000001") == WRONG
    assert verify(v, "000002") == WRONG
    assert verify(v, code(STEP), NOW + 59) == LOCKED
    assert verify(v, code(STEP + 2), NOW + 60) == ACCEPT
    assert alice.user("alice").failures == 0


def test_lock_ran_out_then_wrong_codes_count_from_zero(alice: Installation) -> None:
    v = alice.verifier(max_failures=2, lockout_seconds=60)
    assert verify(v, "000001") == WRONG
    assert verify(v, "000002") == WRONG
    assert verify(v, "000003", NOW + 61) == WRONG  # first failure of a new series, not a new lock
    assert alice.user("alice").failures == 1
    assert verify(v, code(STEP + 2), NOW + 62) == ACCEPT


def test_lockout_seconds_zero_stays_locked_until_unlock(alice: Installation) -> None:
    v = alice.verifier(max_failures=1, lockout_seconds=0)
    assert verify(v, "000001") == WRONG
    assert verify(v, code(STEP + 1000), NOW + 30_000) == LOCKED
    with alice.admin() as admin:
        admin.unlock_user("alice", now=NOW)
    assert verify(v, code(STEP + 1000), NOW + 30_000) == ACCEPT


def test_locked_user_gets_no_challenge(alice: Installation) -> None:
    v = alice.verifier(max_failures=1)
    assert verify(v, "000001") == WRONG
    d = v.login("alice", b"password", first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.state) == (Verdict.LOCKED, None)
    d = v.login("alice", b"password" + code(STEP).encode(), first_factor="store", now=NOW, **DOOR)
    assert d.verdict is Verdict.LOCKED


# -- several tokens, no token ------------------------------------------------------------------------------------------


def test_several_tokens_per_user(alice: Installation) -> None:
    hotp_id = alice.add_token("alice", type="hotp", secret=SEED32, digits=8)
    sha256_id = alice.add_token("alice", type="totp", secret=SEED32, algorithm="SHA256")
    v = alice.verifier()
    assert v.verify_code("alice", oath.hotp(SEED32, 0, 8), now=NOW, **DOOR).token_id == hotp_id
    assert v.verify_code("alice", oath.totp(SEED32, NOW, algorithm="SHA256"), now=NOW, **DOOR).token_id == sha256_id
    assert v.verify_code("alice", code(STEP), now=NOW, **DOOR).token_id == 1
    # a disabled token's codes no longer pass
    with alice.admin() as admin:
        admin.set_token_active(hotp_id, False, now=NOW)
    assert verify(v, oath.hotp(SEED32, 1, 8)) == WRONG


def test_no_token_policy(inst: Installation) -> None:
    inst.add_user("carol", b"password")
    reject = inst.verifier(no_token="reject")
    d = reject.login("carol", b"password", first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.reason) == (Verdict.REJECT, Reason.NO_TOKEN)
    accept = inst.verifier(no_token="accept")
    d = accept.login("carol", b"password", first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.reason) == (Verdict.ACCEPT, Reason.NO_TOKEN_ACCEPTED)
    # the password must still be right
    d = accept.login("carol", b"wrong", first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.reason) == (Verdict.REJECT, Reason.WRONG_PASSWORD)
    # a code for a user without tokens is never accepted
    assert verify(accept, "123456", user="carol") == (Verdict.REJECT, Reason.NO_TOKEN)


def test_no_token_policy_counts_disabled_tokens_as_none(inst: Installation) -> None:
    inst.add_user("carol", b"password")
    token_id = inst.add_token("carol", type="totp", secret=SEED20)
    with inst.admin() as admin:
        admin.set_token_active(token_id, False, now=NOW)
    d = inst.verifier(no_token="reject").login("carol", b"password", first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.reason) == (Verdict.REJECT, Reason.NO_TOKEN)


# -- login: first factor + code ----------------------------------------------------------------------------------------


def test_login_password_and_code(alice: Installation) -> None:
    v = alice.verifier()
    d = v.login("alice", b"password" + code(STEP).encode(), first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.reason, d.token_id) == (Verdict.ACCEPT, Reason.OK, 1)
    d = v.login("alice", b"password" + code(STEP).encode(), first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.reason) == (Verdict.REJECT, Reason.REPLAY)


def test_login_wrong_password_does_not_consume_the_code(alice: Installation) -> None:
    v = alice.verifier()
    d = v.login("alice", b"passw0rd" + code(STEP).encode(), first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.reason) == (Verdict.REJECT, Reason.WRONG_PASSWORD)
    assert d.message == "Authentication failed"
    d = v.login("alice", b"password" + code(STEP).encode(), first_factor="store", now=NOW, **DOOR)
    assert d.verdict is Verdict.ACCEPT


def test_password_bytes_are_not_decoded(alice: Installation) -> None:
    v = alice.verifier()
    for attempt in (b"pass\xffword", b"pass\xffword" + code(STEP).encode(), "pässword".encode("latin-1")):
        d = v.login("alice", attempt, first_factor="store", now=NOW, **DOOR)
        assert d.verdict is Verdict.REJECT, attempt
    assert alice.token(1).last_step == -1


def test_login_password_with_non_ascii_bytes(inst: Installation) -> None:
    inst.add_user("dora", "pässword€".encode())
    inst.add_token("dora", type="totp", secret=SEED20)
    v = inst.verifier()
    d = v.login("dora", "pässword€".encode() + code(STEP).encode(), first_factor="store", now=NOW, **DOOR)
    assert d.verdict is Verdict.ACCEPT
    d = v.login("dora", "pässword€".encode("latin-1", "replace") + code(STEP + 1).encode(), first_factor="store",
                now=NOW, **DOOR)
    assert d.verdict is Verdict.REJECT


def test_login_first_factor_none(alice: Installation) -> None:
    v = alice.verifier()
    d = v.login("alice", code(STEP).encode(), first_factor="none", now=NOW, **DOOR)
    assert d.verdict is Verdict.ACCEPT
    d = v.login("alice", b"password" + code(STEP + 1).encode(), first_factor="none", now=NOW, **DOOR)
    assert d.verdict is Verdict.REJECT


def test_login_user_with_6_and_8_digit_tokens(alice: Installation) -> None:
    alice.add_token("alice", type="hotp", secret=SEED32, digits=8)
    v = alice.verifier()
    d = v.login("alice", b"password" + oath.hotp(SEED32, 0, 8).encode(), first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.token_id) == (Verdict.ACCEPT, 2)
    d = v.login("alice", b"password" + code(STEP).encode(), first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.token_id) == (Verdict.ACCEPT, 1)


def test_unknown_user_is_rejected(alice: Installation) -> None:
    v = alice.verifier()
    for d in (v.login("mallory", b"password" + code(STEP).encode(), first_factor="store", now=NOW, **DOOR),
              v.login("mallory", b"password", first_factor="store", now=NOW, **DOOR),
              v.login("mallory", code(STEP).encode(), first_factor="none", now=NOW, **DOOR),
              v.verify_code("mallory", code(STEP), now=NOW, **DOOR)):
        assert (d.verdict, d.reason, d.state) == (Verdict.REJECT, Reason.UNKNOWN_USER, None)
        assert d.message == "Authentication failed"
    assert v.store.user("mallory") is None  # no user row appears
    assert [r.reason for r in v.store.audit_rows(user="mallory")] == ["unknown_user"] * 4


# -- challenges --------------------------------------------------------------------------------------------------------


def challenge(v: Verifier, now: float = NOW, client: str = "vpn") -> bytes:
    d = v.login("alice", b"password", first_factor="store", door="radius", client=client, now=now)
    assert (d.verdict, d.reason) == (Verdict.CHALLENGE, Reason.CHALLENGE_SENT)
    assert d.state is not None and len(d.state) >= 16
    assert d.message == "Enter your one-time password"
    return d.state


def answer(v: Verifier, state: bytes, c: str, now: float = NOW, client: str = "vpn", user: str = "alice"
           ) -> tuple[Verdict, Reason]:
    d = v.answer_challenge(state, user, c.encode(), door="radius", client=client, now=now)
    return d.verdict, d.reason


def test_password_alone_gets_a_challenge_answered_once(alice: Installation) -> None:
    v = alice.verifier(challenge_timeout=120)
    state = challenge(v)
    assert challenge(v) != state  # each challenge has its own random State
    assert answer(v, state, code(STEP), NOW + 5) == ACCEPT
    assert answer(v, state, code(STEP + 1), NOW + 30) == (Verdict.REJECT, Reason.BAD_STATE)  # used once


def test_challenge_wrong_code_then_state_is_gone(alice: Installation) -> None:
    v = alice.verifier()
    state = challenge(v)
    assert answer(v, state, "000000") == WRONG
    assert answer(v, state, code(STEP)) == (Verdict.REJECT, Reason.BAD_STATE)


def test_challenge_bound_to_client_and_user(alice: Installation) -> None:
    alice.add_user("bob", b"password")
    alice.add_token("bob", type="totp", secret=SEED20)
    v = alice.verifier()
    assert answer(v, challenge(v), code(STEP), client="wifi") == (Verdict.REJECT, Reason.BAD_STATE)
    assert answer(v, challenge(v), code(STEP), user="bob") == (Verdict.REJECT, Reason.BAD_STATE)
    assert answer(v, b"\0" * 16, code(STEP)) == (Verdict.REJECT, Reason.BAD_STATE)
    assert alice.token(1).last_step == -1 and alice.token(2).last_step == -1


def test_challenge_expires(alice: Installation) -> None:
    v = alice.verifier(challenge_timeout=120)
    state = challenge(v)
    assert answer(v, state, code(STEP + 4), NOW + 120) == (Verdict.REJECT, Reason.EXPIRED_STATE)
    state = challenge(v)
    assert answer(v, state, code(STEP + 4), NOW + 119) == ACCEPT


def test_expired_challenges_are_purged(alice: Installation) -> None:
    v = alice.verifier(challenge_timeout=10)
    old = challenge(v)
    challenge(v, NOW + 100)
    assert v.store.challenge(old) is None


def test_challenge_off_rejects_password_alone(alice: Installation) -> None:
    v = alice.verifier(challenge=False)
    d = v.login("alice", b"password", first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.state) == (Verdict.REJECT, None)


def test_wrong_password_alone_gets_no_challenge(alice: Installation) -> None:
    v = alice.verifier()
    d = v.login("alice", b"wrong", first_factor="store", now=NOW, **DOOR)
    assert (d.verdict, d.reason, d.state) == (Verdict.REJECT, Reason.WRONG_PASSWORD, None)


# -- audit -------------------------------------------------------------------------------------------------------------


def test_audit_rows_hold_no_code_password_or_secret(alice: Installation) -> None:
    v = alice.verifier()
    codes = [code(STEP), "918273"]
    v.login("alice", b"password" + codes[0].encode(), first_factor="store", now=NOW, **DOOR)
    v.verify_code("alice", codes[1], now=NOW, **DOOR)
    rows = v.store.audit_rows(user="alice")
    assert [(r.result, r.reason) for r in rows][-2:] == [("accept", "ok"), ("reject", "wrong_code")]
    assert rows[-1].door == "radius" and rows[-1].client == "vpn" and rows[-1].time == NOW
    audit = repr([(r.user, r.door, r.client, r.result, r.reason) for r in v.store.audit_rows()])
    for needle in codes:
        assert needle not in audit
    with sqlite3.connect(alice.config.store.path) as conn:
        dump = "\n".join(conn.iterdump())
    for needle in (oath.encode_base32(SEED20), SEED20.decode(), SEED20.hex(), SEED20.hex().upper()):
        assert needle not in dump



def test_undecodable_user_and_code_are_refused_not_raised(alice: Installation) -> None:
    """Names and codes a door decoded with surrogateescape get a clean reject and an audit row, never an exception."""
    v = alice.verifier()
    bad = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert verify(v, "12345" + bad[0])[0] is Verdict.REJECT
    assert verify(v, code(STEP), user="ali" + bad)[1] is Reason.UNKNOWN_USER
    d = v.login("ali" + bad, b"pw123456", first_factor="store", now=NOW, **DOOR)
    assert d.reason is Reason.UNKNOWN_USER
    assert "ali\\udcff\\udcfe" in {r.user for r in v.store.audit_rows()}
