"""Issue 13 items 4 and 10: from a client with first_factor "none" (or PAM with the password checked elsewhere), an
empty password listed which users have e-mail/SMS tokens, mailed them every 30 s forever, and moved a user's pending
code to the attacker's State; the State of a sent code lived as long as the code."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from otpcore import oath
from otpcore.decision import Decision, Reason, Verdict
from otpcore.service import CHALLENGE_MESSAGE, RETRY_MESSAGE, Verifier

from .conftest import Mailbox, Site, smtp_table

T = 1_800_000_000.0
SEED = b"12345678901234567890"


def empty(v: Verifier, user: str, now: float = T, client: str = "vpn") -> Decision:
    return v.login(user, b"", first_factor="none", door="radius", client=client, now=now)


def answer(v: Verifier, d: Decision, user: str, code: str, now: float = T + 5, client: str = "vpn") -> Decision:
    assert d.state is not None
    return v.answer_challenge(d.state, user, code.encode(), door="radius", client=client, now=now)


@pytest.fixture
def users(site: Callable[..., Site], mail: Mailbox) -> Site:
    """alice with an e-mail token, tom with an authenticator app only, nobody else."""
    s = site(smtp_table(mail.port), oob_max_attempts=3, max_failures=100)
    s.add_user(email="alice@example.org")
    s.add_token(type="email")
    s.add_user("tom")
    s.add_token("tom", type="totp", secret=SEED)
    return s


@pytest.fixture
def mail(smtp_server: Callable[..., Mailbox]) -> Mailbox:
    return smtp_server()


def test_every_user_gets_the_same_challenge(users: Site, mail: Mailbox) -> None:
    v = users.verifier()
    answers = {user: empty(v, user) for user in ("alice", "tom", "nobody")}
    for user, d in answers.items():
        assert (d.verdict, d.message, len(d.state or b"")) == (Verdict.CHALLENGE, CHALLENGE_MESSAGE, 16), user
    assert len(mail.messages) == 1  # only alice has somewhere to send a code
    # a wrong answer is asked again, the same way for all three, until the attempts run out
    for user, d in answers.items():
        first = answer(v, d, user, "000000")
        assert (first.verdict, first.message) == (Verdict.CHALLENGE, RETRY_MESSAGE), user
        second = answer(v, first, user, "000001", now=T + 6)
        assert second.verdict is Verdict.CHALLENGE, user
        third = answer(v, second, user, "000002", now=T + 7)
        assert (third.verdict, third.reason) == (Verdict.REJECT, Reason.TOO_MANY_ATTEMPTS), user


def test_the_decoy_of_an_app_user_takes_the_app_code(users: Site) -> None:
    v = users.verifier()
    d = empty(v, "tom")
    assert answer(v, d, "tom", oath.totp(SEED, T + 5), now=T + 5).accepted


def test_a_phantom_state_is_bound_to_its_name(users: Site) -> None:
    v = users.verifier()
    d = empty(v, "nobody")
    assert answer(v, d, "somebody-else", "123456").reason is Reason.BAD_STATE


def test_codes_per_user_are_capped_with_back_off(users: Site, mail: Mailbox) -> None:
    """Every 30 s forever became: the gap doubles with each code in the hour, and at most oob_max_per_hour /
    oob_max_per_day go out; the refusals are in the audit. The answer stays the same challenge."""
    v = users.verifier()
    times = [T, T + 30, T + 90, T + 210, T + 450]  # gaps of 30, 60, 120, 240 s
    for t in times:
        assert empty(v, "alice", now=t).verdict is Verdict.CHALLENGE
    assert len(mail.messages) == 5
    too_soon = empty(v, "alice", now=T + 450 + 479, client="other")  # the next gap is 480 s
    assert too_soon.verdict is Verdict.CHALLENGE and len(mail.messages) == 5
    capped = empty(v, "alice", now=T + 450 + 480, client="other")  # 5 in the hour: oob_max_per_hour
    assert (capped.verdict, capped.reason) == (Verdict.CHALLENGE, Reason.SEND_LIMIT)
    assert len(mail.messages) == 5
    assert ("challenge", "send_limit") in users.audit()
    assert empty(v, "alice", now=T + 3601).reason is Reason.CHALLENGE_SENT  # the hour has passed
    assert len(mail.messages) == 6


def test_a_pending_code_moves_to_a_new_state_only_for_the_same_client(users: Site, mail: Mailbox) -> None:
    v = users.verifier()
    real = empty(v, "alice", client="vpn")
    code = mail.last_code()
    attacker = empty(v, "alice", now=T + 5, client="attacker")
    assert attacker.verdict is Verdict.CHALLENGE and attacker.state != real.state
    assert answer(v, attacker, "alice", code, client="attacker").verdict is not Verdict.ACCEPT  # a decoy
    assert answer(v, real, "alice", code, now=T + 10).accepted  # the user's own State still works


def test_the_state_of_a_sent_code_lives_for_the_challenge_timeout(site: Callable[..., Site], mail: Mailbox) -> None:
    """Item 10: the smaller of the code's validity and challenge_timeout; the code itself stays valid without it."""
    s = site(smtp_table(mail.port), challenge_timeout=60, oob_validity=300)
    s.add_user(email="alice@example.org")
    s.add_token(type="email")
    v = s.verifier()
    d = v.login("alice", b"s3cret", first_factor="store", door="radius", client="vpn", now=T)
    code = mail.last_code()
    late = answer(v, d, "alice", code, now=T + 61)
    assert (late.verdict, late.reason) == (Verdict.REJECT, Reason.EXPIRED_STATE)
    assert v.verify_code("alice", code, door="radius", client="vpn", now=T + 62).accepted
