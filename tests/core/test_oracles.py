"""Security round 2 (issue 13): the password is no oracle, lockouts escalate, clients are throttled, the TOTP drift
cannot be walked. In-process with an explicit clock; the same attacks through a real server are in
tests/radius/test_attacks.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from otpcore import oath
from otpcore.decision import Reason, Verdict
from otpcore.firstfactor.store import StorePassword
from otpcore.service import Verifier
from otpcore.store import UserRow

from .helpers import SEED20, SEED32, Cli, Installation

NOW = 1_700_000_000.0
STEP = oath.time_step(NOW)
NAS = {"door": "radius", "client": "vpn"}


def code(step: int) -> str:
    return oath.hotp(SEED20, step)


def login(v: Verifier, password: bytes, user: str = "alice", now: float = NOW, client: str = "vpn",
          first_factor: str = "store") -> tuple[Verdict, Reason]:
    d = v.login(user, password, first_factor=first_factor, door="radius", client=client, now=now)
    return d.verdict, d.reason


@pytest.fixture
def alice(inst: Installation) -> Installation:
    """alice, password b"password", one 6-digit TOTP token on SEED20; bob, password b"bob-pw", an 8-digit one."""
    inst.add_user("alice", b"password")
    inst.add_token("alice", type="totp", secret=SEED20)
    inst.add_user("bob", b"bob-pw")
    inst.add_token("bob", type="totp", secret=SEED32, digits=8)
    return inst


# -- wrong passwords count ---------------------------------------------------------------------------------------------


def test_wrong_passwords_lock_the_user(alice: Installation) -> None:
    """30 wrong passwords, then the right one alone, used to get an Access-Challenge: a clear yes."""
    v = alice.verifier(max_failures=5)
    for n in range(30):
        assert login(v, b"guess%d" % n, now=NOW + n)[0] in (Verdict.REJECT, Verdict.LOCKED)
    assert login(v, b"password", now=NOW + 31) == (Verdict.LOCKED, Reason.LOCKED)
    assert login(v, b"password" + code(STEP + 1).encode(), now=NOW + 32) == (Verdict.LOCKED, Reason.LOCKED)
    assert alice.token(1).last_step == -1  # the right code was not used up by a locked login


def test_a_locked_user_answers_the_same_whatever_the_password(alice: Installation) -> None:
    v = alice.verifier(max_failures=2, lockout_seconds=0)
    login(v, b"wrong1")
    login(v, b"wrong2")
    for password in (b"password", b"wrong3", b"password" + code(STEP).encode(), b"x" + code(STEP).encode(), b""):
        assert login(v, password) == (Verdict.LOCKED, Reason.LOCKED)


def test_the_same_wrong_entry_again_counts_once(alice: Installation) -> None:
    v = alice.verifier(max_failures=3)
    for _ in range(5):
        login(v, b"typo" + code(STEP).encode())  # a NAS resending a request with a new id
    assert alice.user("alice").failures == 1


def test_the_reason_names_what_was_wrong(alice: Installation) -> None:
    v = alice.verifier(max_failures=100)
    assert login(v, b"wrong" + code(STEP).encode()) == (Verdict.REJECT, Reason.WRONG_PASSWORD)
    assert login(v, b"password" + code(STEP + 5).encode()) == (Verdict.REJECT, Reason.WRONG_CODE)
    assert login(v, b"wrong-alone") == (Verdict.REJECT, Reason.WRONG_PASSWORD)
    assert login(v, b"anything", user="nobody") == (Verdict.REJECT, Reason.UNKNOWN_USER)
    assert login(v, b"password" + code(STEP).encode()) == (Verdict.ACCEPT, Reason.OK)
    assert login(v, b"password" + code(STEP).encode(), now=NOW + 1) == (Verdict.REJECT, Reason.REPLAY)


# -- one first-factor check per login ---------------------------------------------------------------------------------


@dataclass
class CountingPassword:
    """The store's first factor, counting its checks."""

    inner: StorePassword = field(default_factory=StorePassword)
    checks: list[str] = field(default_factory=list)

    def check(self, user: str, row: UserRow | None, password: bytes) -> Reason:
        self.checks.append(user)
        return self.inner.check(user, row, password)


def test_every_path_costs_one_password_check(alice: Installation) -> None:
    """The timing told which factor failed (two argon2 checks for a wrong password, one for a wrong code). Now every
    login, whatever is wrong with it, makes exactly one first-factor check."""
    v = alice.verifier(max_failures=1000)
    counting = CountingPassword()
    v._first_factors["store"] = counting
    cases = {
        "unknown user": ("nobody", b"password" + code(STEP).encode()),
        "wrong password + code": ("alice", b"wrong" + code(STEP).encode()),
        "right password + wrong code": ("alice", b"password" + code(STEP + 9).encode()),
        "password alone": ("alice", b"password"),
        "wrong password alone": ("alice", b"wrong"),
        "8-digit token, wrong password": ("bob", b"wrong" + oath.hotp(SEED32, STEP, 8).encode()),
        "8-digit token, wrong code": ("bob", b"bob-pw12345678"),
        "accepted": ("alice", b"password" + code(STEP).encode()),
    }
    for name, (user, password) in cases.items():
        counting.checks.clear()
        login(v, password, user=user)
        assert counting.checks == [user], name
    locked = alice.verifier(max_failures=1, lockout_seconds=0)
    locked._first_factors["store"] = counting
    login(locked, b"wrong", user="bob")
    counting.checks.clear()
    assert login(locked, b"bob-pw" + oath.hotp(SEED32, STEP, 8).encode(), user="bob")[0] is Verdict.LOCKED
    assert counting.checks == ["bob"]


def test_code_alone_costs_the_same_for_unknown_users(alice: Installation, monkeypatch: pytest.MonkeyPatch) -> None:
    """first_factor "none": an unknown user's code is checked against a phantom token (the same HMACs)."""
    v = alice.verifier()
    wrong = code(STEP + 7).encode()
    calls: list[int] = []
    real = oath.hotp
    monkeypatch.setattr(oath, "hotp", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    assert login(v, wrong, first_factor="none")[1] is Reason.WRONG_CODE
    known = len(calls)
    calls.clear()
    assert login(v, wrong, user="nobody", first_factor="none")[1] is Reason.UNKNOWN_USER
    assert known == len(calls) == 3  # the window of one step either side


# -- escalating lockouts ----------------------------------------------------------------------------------------------


def test_each_lockout_in_a_row_lasts_twice_as_long_up_to_the_cap(alice: Installation) -> None:
    """5 guesses per 300 s was ~1 440 a day across lockouts that reset the count."""
    v = alice.verifier(max_failures=2, lockout_seconds=100, lockout_max_seconds=350)
    t = NOW
    for expected in (100, 200, 350, 350):
        login(v, b"wrong-a", now=t)
        assert login(v, b"wrong-b", now=t)[0] is Verdict.LOCKED
        assert login(v, b"password" + code(oath.time_step(t + expected - 1)).encode(), now=t + expected - 1)[0] \
            is Verdict.LOCKED
        t += expected
    assert alice.user("alice").lockouts == 4
    assert login(v, b"password" + code(oath.time_step(t)).encode(), now=t) == (Verdict.ACCEPT, Reason.OK)
    assert alice.user("alice").lockouts == 0  # a success starts again from the first lockout


def test_unlock_resets_the_escalation(alice: Installation) -> None:
    v = alice.verifier(max_failures=1, lockout_seconds=100)
    login(v, b"wrong")
    login(v, b"wrong2", now=NOW + 100)
    assert alice.user("alice").lockouts == 2
    with alice.admin() as admin:
        admin.unlock_user("alice", now=NOW + 101)
    user = alice.user("alice")
    assert (user.failures, user.locked_at, user.lockouts) == (0, None, 0)


# -- per-client throttle ----------------------------------------------------------------------------------------------


def test_a_client_with_too_many_failed_logins_is_throttled(alice: Installation) -> None:
    """RFC 4226 §7.3: one client guessing across many users stays under every user's lockout; its failures are
    limited instead (a leaky bucket of client_max_failures per client_failure_window seconds)."""
    v = alice.verifier(max_failures=100, client_max_failures=3, client_failure_window=60)
    for n in range(3):
        assert login(v, b"guess", user=f"user{n}")[1] is Reason.UNKNOWN_USER
    assert login(v, b"password" + code(STEP).encode()) == (Verdict.REJECT, Reason.THROTTLED)
    assert login(v, code(STEP).encode(), first_factor="none") == (Verdict.REJECT, Reason.THROTTLED)
    # another client is not affected, and the bucket drains: one failure per 20 s
    assert login(v, b"password" + code(STEP).encode(), client="other") == (Verdict.ACCEPT, Reason.OK)
    assert login(v, b"password" + code(STEP + 1).encode(), now=NOW + 21) == (Verdict.ACCEPT, Reason.OK)
    assert alice.token(1).last_step == STEP + 1


def test_the_admin_door_is_not_throttled(alice: Installation) -> None:
    v = alice.verifier(client_max_failures=1)
    for _ in range(3):
        v.verify_code("alice", "000000", door="admin", client="otp-admin", now=NOW)
    assert v.verify_code("alice", code(STEP), door="admin", client="otp-admin", now=NOW).accepted


def test_user_show_says_where_the_user_stands(cli_alice: Cli) -> None:
    cli_alice.ok("token", "add", "alice", "--type", "totp", "--secret", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "--qr",
                 "none")
    for wrong in ("000001", "000002", "000003"):  # max_failures = 3 in this installation
        cli_alice.run("token", "verify", "alice", wrong)
    shown = json.loads(cli_alice.ok("user", "show", "alice", "--json"))
    assert (shown["locked"], shown["lockouts_in_a_row"], shown["next_lockout_seconds"]) == (True, 1, 600)
    assert shown["locked_until"].endswith("Z")
    text = cli_alice.ok("user", "show", "alice")
    assert "locked: yes" in text and "lockouts_in_a_row: 1" in text
    cli_alice.ok("user", "unlock", "alice")
    shown = json.loads(cli_alice.ok("user", "show", "alice", "--json"))
    assert (shown["locked"], shown["locked_until"], shown["lockouts_in_a_row"]) == (False, None, 0)


def test_unknown_names_are_counted_and_locked_like_users(alice: Installation) -> None:
    """A name nobody has used to be refused without a count, so a lockout (PAM: PAM_MAXTRIES) told that a name
    exists. Now both go the same way, and both cost a row read and a row written."""
    v = alice.verifier(max_failures=3, lockout_seconds=0)

    def run(user: str, password: bytes) -> list[Verdict]:
        verdicts = [login(v, code(STEP + n).encode(), user=user, first_factor="none")[0] for n in (5, 6, 7, 8)]
        verdicts.append(login(v, password + code(STEP).encode(), user=user)[0])
        return verdicts

    assert run("alice", b"password") == run("nobody", b"password") == [
        Verdict.REJECT, Verdict.REJECT, Verdict.REJECT, Verdict.LOCKED, Verdict.LOCKED]
    assert alice.token(1).last_step == -1
