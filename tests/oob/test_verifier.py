"""Email and sms tokens through the Verifier, the way the RADIUS and PAM doors call it, with real servers behind."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Sequence

import pytest

from otpcore import oath, oob
from otpcore.admin import Admin
from otpcore.decision import Decision, Reason, Verdict
from otpcore.service import (
    NOT_SENT_MESSAGE,
    PENDING_MESSAGE,
    RETRY_MESSAGE,
    SENT_MESSAGES,
    SENT_REJECT_MESSAGE,
    WAIT_MESSAGE,
    Verifier,
)

from .conftest import Mailbox, Site, SmsGateway, sms_table, smtp_table

T = 1_800_000_000.0
RADIUS = {"door": "radius", "client": "vpn"}


def login(v: Verifier, password: bytes = b"s3cret", now: float = T, first_factor: str = "store") -> Decision:
    return v.login("alice", password, first_factor=first_factor, now=now, **RADIUS)


def answer(v: Verifier, decision: Decision, code: str, now: float = T + 10) -> Decision:
    assert decision.state is not None
    return v.answer_challenge(decision.state, "alice", code.encode(), now=now, **RADIUS)


@pytest.fixture
def mail(smtp_server: Callable[..., Mailbox]) -> Mailbox:
    return smtp_server()


@pytest.fixture
def email_site(site: Callable[..., Site], mail: Mailbox) -> Callable[..., Site]:
    """An installation sending through the plain SMTP server, with alice (password s3cret) and an email token."""

    def make(token: dict[str, object] | None = None, **policy: object) -> Site:
        made = site(smtp_table(mail.port), **policy)
        made.add_user(email="alice@example.org", phone="+15550100")
        made.add_token(type="email", **(token or {}))
        return made

    return make


# -- the round trip ---------------------------------------------------------------------------------------------------


def test_password_sends_a_code_and_the_code_answers_the_challenge(email_site: Callable[..., Site],
                                                                   mail: Mailbox) -> None:
    s = email_site()
    v = s.verifier()
    challenge = login(v)
    assert challenge.verdict is Verdict.CHALLENGE and challenge.reason is Reason.CHALLENGE_SENT
    assert challenge.state and challenge.message == SENT_MESSAGES[("email",)]
    assert mail.envelopes == [("otp@example.org", ["alice@example.org"])]
    code = mail.last_code(6)
    assert code.isdigit()
    decision = answer(v, challenge, code)
    assert decision.verdict is Verdict.ACCEPT and decision.reason is Reason.OK
    assert s.audit() == [("challenge", "challenge"), ("accept", "ok")]


def test_only_a_keyed_hash_of_the_code_is_stored(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site(token={"options": {"length": 10, "alphabet": "alphanumeric"}})
    v = s.verifier()
    login(v)
    code = mail.last_code(10)
    v.close()
    s.verifiers.clear()
    with sqlite3.connect(s.config.store.path) as db:
        rows = db.execute("SELECT code_hash, attempts FROM challenges").fetchall()
        dump = "\n".join(db.iterdump())
    assert len(rows) == 1 and len(rows[0][0]) == 16 and rows[0][1] == 0
    assert code not in dump and code.lower() not in dump
    for path in s.folder.glob("otp.sqlite*"):
        assert code.encode() not in path.read_bytes()


def test_a_code_is_accepted_once(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site()
    v = s.verifier()
    challenge = login(v)
    code = mail.last_code()
    assert answer(v, challenge, code).accepted
    again = answer(v, challenge, code, now=T + 20)
    assert again.verdict is Verdict.REJECT and again.reason is Reason.REPLAY
    alone = v.verify_code("alice", code, now=T + 21, **RADIUS)
    assert alone.verdict is Verdict.REJECT and alone.reason is Reason.REPLAY
    assert login(v, b"s3cret" + code.encode(), now=T + 22).reason is Reason.REPLAY
    assert s.audit()[-3:] == [("reject", "replay")] * 3


def test_wrong_codes_ask_again_until_too_many_attempts(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site(oob_max_attempts=3)
    v = s.verifier()
    challenge = login(v)
    code = mail.last_code()
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in (1, 2, 3)]
    first = answer(v, challenge, wrong[0])
    assert first.verdict is Verdict.CHALLENGE and first.reason is Reason.WRONG_CODE
    assert first.message == RETRY_MESSAGE and first.state not in (None, challenge.state)
    assert answer(v, challenge, code).reason is Reason.BAD_STATE  # a State is single use, even a wrong answer's
    second = answer(v, first, wrong[1])
    assert second.verdict is Verdict.CHALLENGE and second.reason is Reason.WRONG_CODE
    third = answer(v, second, wrong[2])
    assert third.verdict is Verdict.REJECT and third.reason is Reason.TOO_MANY_ATTEMPTS
    # the code is dead, with its State and without
    assert answer(v, second, code).reason is Reason.TOO_MANY_ATTEMPTS
    assert v.verify_code("alice", code, now=T + 30, **RADIUS).reason is Reason.TOO_MANY_ATTEMPTS
    assert s.audit() == [("challenge", "challenge"), ("challenge", "wrong_code"), ("reject", "bad_state"),
                         ("challenge", "wrong_code"), ("reject", "too_many_attempts"),
                         ("reject", "too_many_attempts"), ("reject", "too_many_attempts")]
    with Admin(s.config) as admin:
        # the wrong codes count for the lockout too, and so does the dead code given without its State (as a
        # replayed TOTP code does); the tombstone answered with its State was refused before any check
        assert admin.user("alice").failures == 4


def test_wrong_codes_lock_the_user(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site(oob_max_attempts=10, max_failures=2)
    v = s.verifier()
    challenge = login(v)
    first = answer(v, challenge, "000000" if mail.last_code() != "000000" else "111111")
    assert first.verdict is Verdict.CHALLENGE
    second = answer(v, first, "222222" if mail.last_code() != "222222" else "333333")
    assert second.verdict is Verdict.LOCKED
    assert login(v, now=T + 40).verdict is Verdict.LOCKED
    assert len(mail.messages) == 1  # no code for a locked user


def test_expired_code_is_refused(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site(oob_validity=60)
    v = s.verifier()
    challenge = login(v)
    late = answer(v, challenge, mail.last_code(), now=T + 60)
    assert late.verdict is Verdict.REJECT and late.reason is Reason.EXPIRED_CODE
    # without the State (help desk send, then `token verify` or password+code) it is the same
    assert v.send_code("alice", now=T + 100, **RADIUS).verdict is Verdict.CHALLENGE
    alone = v.verify_code("alice", mail.last_code(), now=T + 161, **RADIUS)
    assert alone.verdict is Verdict.REJECT and alone.reason is Reason.EXPIRED_CODE
    assert [a for a in s.audit() if a[0] == "reject"] == [("reject", "expired_code")] * 2


def test_resend_too_soon(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site(oob_resend_interval=30)
    v = s.verifier()
    first = login(v)
    code = mail.last_code()
    # the NAS gave up and the user tries again: no second mail, the pending code moves to a new State
    again = login(v, now=T + 5)
    assert again.verdict is Verdict.CHALLENGE and again.reason is Reason.RESEND_TOO_SOON
    assert again.message == PENDING_MESSAGE and again.state != first.state
    assert len(mail.messages) == 1
    assert answer(v, first, code).reason is Reason.BAD_STATE
    assert answer(v, again, code, now=T + 12).accepted
    # the code is used and the interval not over: nothing to offer
    refused = login(v, now=T + 20)
    assert refused.verdict is Verdict.REJECT and refused.reason is Reason.RESEND_TOO_SOON
    assert refused.message == WAIT_MESSAGE
    assert len(mail.messages) == 1
    fresh = login(v, now=T + 31)
    assert fresh.reason is Reason.CHALLENGE_SENT and len(mail.messages) == 2
    assert ("reject", "resend_too_soon") in s.audit() and ("challenge", "resend_too_soon") in s.audit()


def test_the_last_send_survives_a_new_process(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site(oob_resend_interval=30)
    s.verifier().send_code("alice", now=T, **RADIUS)
    other = Verifier.open(s.config)  # another connection, as another worker or the PAM module would open
    try:
        assert other.send_code("alice", now=T + 29, **RADIUS).reason is Reason.RESEND_TOO_SOON
        assert other.send_code("alice", now=T + 30, **RADIUS).reason is Reason.CHALLENGE_SENT
    finally:
        other.close()
    assert len(mail.messages) == 2


def test_a_new_code_replaces_the_pending_one(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site()
    v = s.verifier()
    v.send_code("alice", now=T, **RADIUS)
    old = mail.last_code()
    v.send_code("alice", now=T + 1, force=True, **RADIUS)
    new = mail.last_code()
    if old != new:
        assert v.verify_code("alice", old, now=T + 2, **RADIUS).reason is Reason.WRONG_CODE
    assert v.verify_code("alice", new, now=T + 3, **RADIUS).accepted


# -- delivery failures ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["closed", "silent"])
def test_mail_server_down_or_slow_rejects_within_3_seconds(site: Callable[..., Site], closed_port: int,
                                                           silent_port: int, server: str) -> None:
    port = closed_port if server == "closed" else silent_port
    s = site(smtp_table(port, timeout=2.0))  # the default timeout
    s.add_user(email="alice@example.org")
    s.add_token(type="email")
    v = s.verifier()
    started = time.monotonic()
    decision = login(v)
    assert time.monotonic() - started < 3.0
    assert decision.verdict is Verdict.REJECT and decision.reason is Reason.DELIVERY_FAILED
    assert decision.message == NOT_SENT_MESSAGE
    assert s.audit() == [("reject", "delivery_failed")]
    assert v.store.code_challenges(v.store.require_user("alice").id) == []  # no code waits for an answer


def test_no_delivery_configured(site: Callable[..., Site]) -> None:
    s = site()
    s.add_user(email="alice@example.org")
    s.add_token(type="email")
    assert login(s.verifier()).reason is Reason.DELIVERY_FAILED


def test_sms_through_the_gateway_and_both_channels(site: Callable[..., Site], mail: Mailbox,
                                                   sms_gateway: SmsGateway) -> None:
    s = site(smtp_table(mail.port) + sms_table(sms_gateway.url))
    s.add_user(email="alice@example.org", phone="+15550100")
    s.add_token(type="email")
    s.add_token(type="sms")
    v = s.verifier()
    challenge = login(v)
    assert challenge.message == SENT_MESSAGES[("email", "sms")]
    [request] = sms_gateway.requests
    assert request.json()["to"] == "+15550100"
    code = mail.last_code()
    assert request.json()["text"] == f"Your one-time code is {code}"  # one code, both ways
    assert answer(v, challenge, code).accepted


def test_one_channel_failing_is_audited_and_the_other_carries_the_code(site: Callable[..., Site], mail: Mailbox,
                                                                        sms_gateway: SmsGateway) -> None:
    sms_gateway.status = 500
    s = site(smtp_table(mail.port) + sms_table(sms_gateway.url))
    s.add_user(email="alice@example.org", phone="+15550100")
    s.add_token(type="sms")
    s.add_token(type="email")
    v = s.verifier()
    challenge = login(v)
    assert challenge.verdict is Verdict.CHALLENGE and challenge.message == SENT_MESSAGES[("email",)]
    assert ("error", "delivery_failed_sms") in s.audit()
    assert answer(v, challenge, mail.last_code()).accepted


def test_sms_only(site: Callable[..., Site], sms_gateway: SmsGateway) -> None:
    s = site(sms_table(sms_gateway.url))
    s.add_user(phone="+15550100")
    s.add_token(type="sms", digits=8)
    v = s.verifier()
    challenge = login(v)
    assert challenge.message == SENT_MESSAGES[("sms",)]
    code = sms_gateway.requests[-1].json()["text"].split()[-1]
    assert len(code) == 8 and code.isdigit()
    assert answer(v, challenge, code).accepted


# -- triggers and knobs -----------------------------------------------------------------------------------------------


def test_empty_password_with_first_factor_none_asks_for_a_code(email_site: Callable[..., Site],
                                                               mail: Mailbox) -> None:
    s = email_site()
    v = s.verifier()
    challenge = login(v, b"", first_factor="none")
    assert challenge.verdict is Verdict.CHALLENGE and challenge.state
    assert answer(v, challenge, mail.last_code()).accepted
    # and the code alone as the whole password, once sent
    v.send_code("alice", now=T + 100, force=True, **RADIUS)
    assert login(v, mail.last_code().encode(), now=T + 101, first_factor="none").accepted


def test_empty_code_asks_for_a_code_in_verify_code(email_site: Callable[..., Site], mail: Mailbox) -> None:
    """The PAM door in local mode (first factor elsewhere) calls verify_code: an empty answer asks for the code."""
    s = email_site()
    v = s.verifier()
    challenge = v.verify_code("alice", "", door="pam", client="sshd", now=T)
    assert challenge.verdict is Verdict.CHALLENGE and len(mail.messages) == 1
    assert v.answer_challenge(challenge.state or b"", "alice", mail.last_code().encode(), door="pam",
                              client="sshd", now=T + 5).accepted


def test_without_challenges_the_code_is_sent_and_the_next_login_carries_it(email_site: Callable[..., Site],
                                                                           mail: Mailbox) -> None:
    s = email_site(challenge=False)
    v = s.verifier()
    first = login(v)
    assert first.verdict is Verdict.REJECT and first.reason is Reason.CODE_SENT
    assert first.message == SENT_REJECT_MESSAGE and first.state is None
    code = mail.last_code()
    assert login(v, b"s3cret" + code.encode(), now=T + 15).accepted
    assert login(v, b"s3cret" + code.encode(), now=T + 16).reason is Reason.REPLAY
    assert login(v, b"wrong" + code.encode(), now=T + 17).reason is Reason.WRONG_PASSWORD


def test_alphanumeric_code_of_8_without_look_alikes(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site(token={"options": {"length": 8, "alphabet": "alphanumeric"}})
    v = s.verifier()
    challenge = login(v)
    code = mail.last_code(8)
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{8}", code)
    assert answer(v, challenge, code.lower()[:4] + " " + code.lower()[4:]).accepted  # case and spaces do not matter


def test_policy_defaults_apply_to_tokens_without_options(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site(oob_length=4, oob_alphabet="alphanumeric")
    login(s.verifier())
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}", mail.last_code(4))


def test_accepting_users_without_tokens_does_not_let_email_users_in(email_site: Callable[..., Site]) -> None:
    s = email_site(no_token="accept")
    assert login(s.verifier()).verdict is Verdict.CHALLENGE


def test_a_user_with_an_app_too_may_answer_with_its_code(email_site: Callable[..., Site], mail: Mailbox) -> None:
    s = email_site()
    secret = b"12345678901234567890"
    s.add_token(type="totp", secret=secret)
    v = s.verifier()
    challenge = login(v)
    assert len(mail.messages) == 1
    assert answer(v, challenge, oath.totp(secret, T + 10)).accepted


def test_a_disabled_token_sends_nothing_and_its_pending_code_is_dead(email_site: Callable[..., Site],
                                                                      mail: Mailbox) -> None:
    s = email_site()
    v = s.verifier()
    challenge = login(v)
    with Admin(s.config) as admin:
        admin.set_token_active(1, False, now=T)
    assert answer(v, challenge, mail.last_code()).verdict is Verdict.REJECT
    assert login(v, now=T + 100).reason is Reason.NO_TOKEN


# -- the sans-I/O part ------------------------------------------------------------------------------------------------


def test_code_outcomes() -> None:
    settings = oob.OobSettings(max_attempts=2)
    good, bad = b"a" * 16, b"b" * 16

    def check(given: bytes, attempts: int = 0, now: float = 0.0) -> tuple[oob.CodeOutcome, int]:
        return oob.check_code(stored_hash=good, given_hash=given, attempts=attempts, expires=100.0,
                              settings=settings, now=now)

    assert check(good) == (oob.CodeOutcome.ACCEPT, oob.USED)
    assert check(bad) == (oob.CodeOutcome.WRONG, 1)
    assert check(bad, 1) == (oob.CodeOutcome.EXHAUSTED, 2)
    assert check(good, 2) == (oob.CodeOutcome.EXHAUSTED, 2)
    assert check(good, now=100.0) == (oob.CodeOutcome.EXPIRED, 0)
    assert check(good, oob.USED) == (oob.CodeOutcome.USED, oob.USED)


def test_generation_and_knobs() -> None:
    for alphabet, pattern in (("digits", r"[0-9]{10}"), ("alphanumeric", r"[2-9A-HJKMNP-Z]{10}")):
        codes = {oob.generate_code(oob.OobSettings(length=10, alphabet=alphabet)) for _ in range(50)}
        assert len(codes) == 50 and all(re.fullmatch(pattern, c) for c in codes)
    assert oob.resend_wait(None, oob.OobSettings(), 5.0) == 0.0
    assert oob.resend_wait(100.0, oob.OobSettings(resend_interval=30), 110.0) == 20.0
    assert oob.resend_wait(100.0, oob.OobSettings(resend_interval=30), 130.0) == 0.0
    with pytest.raises(Exception, match="length must be between 4 and 10"):
        oob.validate_options({"length": 11})
    with pytest.raises(Exception, match="alphabet must be one of"):
        oob.validate_options({"alphabet": "hex"})
    assert oob.load_options('{"length": 8, "last_sent": 5}') == {"length": 8}
    assert oob.last_sent('{"length": 8, "last_sent": 5}') == 5.0


def test_the_store_stays_writable_while_a_code_is_sent(site: Callable[..., Site]) -> None:
    """The network part runs outside the write transaction: another process can write meanwhile."""
    s = site()
    s.add_user(email="alice@example.org")
    s.add_token(type="email")
    seen: list[str] = []

    class Probe:
        def send_all(self, messages: Sequence[oob.Outgoing]) -> list[str | None]:
            other = sqlite3.connect(s.config.store.path, timeout=0.05, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # fails with "database is locked" if the sender held the lock
                other.execute("ROLLBACK")
            finally:
                other.close()
            seen.extend(m.code for m in messages)
            return [None] * len(messages)

    v = s.verifier()
    v.delivery = Probe()
    challenge = login(v)
    assert challenge.verdict is Verdict.CHALLENGE and len(seen) == 1
    assert answer(v, challenge, seen[0]).accepted


def test_a_broken_sender_is_a_failed_delivery_not_a_crash(site: Callable[..., Site]) -> None:
    s = site()
    s.add_user(email="alice@example.org")
    s.add_token(type="email")

    class Broken:
        def send_all(self, messages: Sequence[oob.Outgoing]) -> list[str | None]:
            raise RuntimeError("bug")

    v = s.verifier()
    v.delivery = Broken()
    assert login(v).reason is Reason.DELIVERY_FAILED
