"""Sending email/sms codes: when a code may go out, the challenge row that waits for it, and the delivery.

A code is made when the user passed the first factor (or asked with an empty code where the password is checked
elsewhere), stored only as a keyed hash in a challenge row (expiry = the code's validity, attempts = wrong answers so
far, or oob.USED once accepted), sent outside any transaction, and accepted once: with the State of its challenge, or
without it (password+code, `otp-admin token verify`). How often a user is sent codes is capped (otpcore.oob.send_wait).
The addresses are the user's in the store, or for a directory user (UserRow.directory) the directory's, read at send
time (never copied into the store).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from . import oob
from .context import CHALLENGE_MESSAGE, VerifyContext
from .decision import Decision, Reason, Verdict
from .errors import OtpError
from .store import ChallengeRow, TokenRow, UserRow

if TYPE_CHECKING:
    from .firstfactor.ldap import Directory

__all__ = ["NOT_SENT_MESSAGE", "PENDING_MESSAGE", "SENT_MESSAGES", "SENT_REJECT_MESSAGE", "WAIT_MESSAGE", "CodeSender",
           "SendResult", "sent_decision"]

log = logging.getLogger("otpcore.service")

SENT_MESSAGES = {("email",): "Enter the code sent to you by e-mail", ("sms",): "Enter the code sent to you by SMS",
                 ("email", "sms"): "Enter the code sent to you by e-mail and SMS"}
PENDING_MESSAGE = "Enter the code sent to you earlier"
NOT_SENT_MESSAGE = "The code could not be sent, try again later"
WAIT_MESSAGE = "A code was sent recently, wait before asking again"
SENT_REJECT_MESSAGE = "A code has been sent to you, log in again with it"


class SendResult(NamedTuple):
    """What became of a request for a code. `reason`: CHALLENGE_SENT (sent now), RESEND_TOO_SOON with a `state` (the
    code sent earlier now waits at this State), RESEND_TOO_SOON or SEND_LIMIT without one (nothing to offer),
    DELIVERY_FAILED, NO_TOKEN or LOCKED."""

    reason: Reason
    state: bytes | None = None
    channels: tuple[str, ...] = ()
    token_id: int | None = None


class CodeSender:
    def __init__(self, ctx: VerifyContext, deliverer: Callable[[], oob.Deliverer | None],
                 directory: Callable[[], Directory]) -> None:
        self.ctx = ctx
        self._deliverer = deliverer
        self._directory = directory

    def send(self, row: UserRow, *, door: str, client: str, now: float, force: bool = False,
             move_pending: bool = True) -> SendResult:
        """Send a new code to the user's email/sms tokens, unless one went out too recently: then, with
        `move_pending`, a code still pending for the same client moves to a new State. `force` (the help desk)
        ignores the gaps and caps."""
        ctx = self.ctx
        if ctx.is_locked(row, now):
            return SendResult(Reason.LOCKED)
        tokens = ctx.oob_tokens(row)
        if not tokens:
            return SendResult(Reason.NO_TOKEN)
        primary, settings = tokens[0]  # the first token's knobs make the code; every token gets it (email + sms)
        targets = self._addresses(row, tokens)
        if not targets:
            return SendResult(Reason.DELIVERY_FAILED)
        code = oob.generate_code(settings)
        state = os.urandom(16)
        with ctx.store.transaction():
            ctx.store.purge_challenges(now)
            current = ctx.store.user_by_id(row.id) or row  # under the write lock: another process may have sent
            sends = oob.load_sends(current.oob_sends)
            wait, capped = (0.0, False) if force else oob.send_wait(sends, settings, ctx.policy, now)
            if wait > 0:
                return self._not_now(row, state, settings, client=client, now=now, move=move_pending,
                                     capped=capped)
            self._record_send(row, primary, targets, sends, now)
            ctx.store.add_challenge(ChallengeRow(
                state=state, user_id=row.id, client=client, token_id=primary.id, created=now,
                expires=now + settings.validity, code_hash=oob.code_hash(ctx.sealer.fingerprint, row.id, code),
                attempts=0, state_expires=now + min(settings.validity, ctx.policy.challenge_timeout)))
        # The network, outside the transaction: the store stays writable for everybody else meanwhile.
        messages = [oob.Outgoing(t.type, address, row.name, code, settings.validity) for t, address in targets]
        errors = self._deliver(messages)
        sent = tuple(sorted({m.channel for m, error in zip(messages, errors, strict=True) if error is None}))
        with ctx.store.transaction():
            if not sent:
                ctx.store.delete_challenge(state)
                return SendResult(Reason.DELIVERY_FAILED)
            for m, error in zip(messages, errors, strict=True):
                if error is not None:  # one channel of two failed: the code went the other way
                    ctx.store.audit(now=now, user=row.name, door=door, client=client, result="error",
                                    reason=f"{Reason.DELIVERY_FAILED.value}_{m.channel}", source=ctx.source)
        return SendResult(Reason.CHALLENGE_SENT, state, sent, primary.id)

    def _record_send(self, row: UserRow, primary: TokenRow, targets: Sequence[tuple[TokenRow, str]],
                     sends: Sequence[float], now: float) -> None:
        store = self.ctx.store
        for old in store.code_challenges(row.id):  # a new code replaces the ones still pending
            if old.attempts != oob.USED:
                store.delete_challenge(old.state)
        for t, _ in targets:
            store.set_token_option(t.id, "last_sent", now)
        store.set_oob_sends(row.id, oob.dump_sends([*sends, now], now))

    def _not_now(self, row: UserRow, state: bytes, settings: oob.OobSettings, *, client: str, now: float,
                 move: bool, capped: bool) -> SendResult:
        """No new code yet. A code still pending for the same client moves to a new State, so the user can finish
        with it; another client never takes a pending code away from the one it was sent for."""
        store = self.ctx.store
        pending = next((c for c in store.code_challenges(row.id)
                        if c.token_id is not None and c.client == client and 0 <= c.attempts < settings.max_attempts
                        and now < c.expires), None)
        if pending is not None and move:
            store.delete_challenge(pending.state)
            store.add_challenge(pending._replace(state=state,
                                        state_expires=min(pending.expires, now + self.ctx.policy.challenge_timeout)))
            return SendResult(Reason.RESEND_TOO_SOON, state, token_id=pending.token_id)
        return SendResult(Reason.SEND_LIMIT if capped else Reason.RESEND_TOO_SOON)

    def _addresses(self, row: UserRow, tokens: Sequence[tuple[TokenRow, oob.OobSettings]]
                   ) -> list[tuple[TokenRow, str]]:
        email, phone, where = row.email, row.phone, "the user's profile"
        if row.directory:
            where = "the directory"
            try:
                entry = self._directory().find(row.name)
            except OtpError as exc:  # no [ldap], or the directory did not answer: no code goes out
                log.warning("user=%s: the directory gives no address: %s", row.name, exc)
                return []
            email, phone = (entry.email, entry.phone) if entry is not None else (None, None)
        targets = []
        for t, _ in tokens:
            address = email if t.type == "email" else phone
            if address:
                targets.append((t, address))
            else:
                log.warning("user=%s token=%d: no %s in %s", row.name, t.id,
                            "e-mail address" if t.type == "email" else "phone number", where)
        return targets

    def _deliver(self, messages: Sequence[oob.Outgoing]) -> list[str | None]:
        delivery = self._deliverer()
        if delivery is None:
            log.warning("user=%s: no delivery configured ([delivery.smtp] / [delivery.sms])", messages[0].user)
            return ["no delivery configured"] * len(messages)
        try:
            return delivery.send_all(messages)
        except Exception as exc:  # a broken sender must not break the login: the code was not sent
            log.exception("user=%s: delivery failed", messages[0].user)
            return [f"delivery failed: {type(exc).__name__}"] * len(messages)


def sent_decision(ctx: VerifyContext, user: str, sent: SendResult, *, door: str, client: str, now: float,
                  challenge: bool) -> Decision:
    """The answer to a request for a code from someone who proved the first factor (or the help desk)."""
    finish = ctx.finish
    if sent.reason is Reason.CHALLENGE_SENT and not challenge:
        decision = finish(user, door, client, now, Verdict.REJECT, Reason.CODE_SENT, sent.token_id)
        return decision._replace(message=SENT_REJECT_MESSAGE)
    if sent.state is not None:
        decision = finish(user, door, client, now, Verdict.CHALLENGE, sent.reason, sent.token_id)
        message = SENT_MESSAGES.get(sent.channels, CHALLENGE_MESSAGE) if sent.channels else PENDING_MESSAGE
        return decision._replace(state=sent.state, message=message)
    if sent.reason is Reason.LOCKED:
        return finish(user, door, client, now, Verdict.LOCKED, Reason.LOCKED)
    decision = finish(user, door, client, now, Verdict.REJECT, sent.reason)
    if sent.reason is Reason.DELIVERY_FAILED:
        return decision._replace(message=NOT_SENT_MESSAGE)
    if sent.reason in (Reason.RESEND_TOO_SOON, Reason.SEND_LIMIT):
        return decision._replace(message=WAIT_MESSAGE)
    return decision
