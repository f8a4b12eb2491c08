"""Checking a code: TOTP/HOTP codes and sent email/sms codes, with and without the State of their challenge.

Every check runs inside a transaction that reads the state it decides on under the write lock, and counts a wrong
code toward the user's lockout and the client's throttle. A server may check TOTP/HOTP codes ahead, outside any
transaction (`precheck`); such a result is used only if the rows read inside the transaction are the very ones it
was computed from.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence

from . import oob
from . import policy as pol
from .context import VerifyContext
from .decision import Decision, Reason, Verdict
from .store import ChallengeRow, TokenRow, UserRow

__all__ = ["RETRY_MESSAGE", "CodeChecker"]

RETRY_MESSAGE = "Wrong code, try again"
_PRECHECKED_MAX = 4096  # precheck() results waiting for their check


class CodeChecker:
    def __init__(self, ctx: VerifyContext) -> None:
        self.ctx = ctx
        # precheck(): (the user's active token rows, code, now) -> pol.check_code's result for them
        self.prechecked: dict[tuple[tuple[TokenRow, ...], str, float], pol.CodeCheck] = {}

    def precheck(self, user_rows: tuple[UserRow | None, list[TokenRow]], code: str, now: float) -> None:
        row, token_rows = user_rows
        tokens = self.ctx.otp_tokens(row, token_rows)
        if tokens:
            if len(self.prechecked) >= _PRECHECKED_MAX:  # results whose check never came
                self.prechecked.clear()
            self.prechecked[(tuple(token_rows), code, now)] = pol.check_code(tokens, code, self.ctx.policy, now)

    def check(self, user: str, code: str, *, door: str, client: str, now: float) -> Decision:
        """The code alone, for a user (a TOTP/HOTP code, or an email/sms code sent before)."""
        ctx = self.ctx
        with ctx.store.transaction():
            opened = ctx.open_check(user, _entry(code), door=door, client=client, now=now,
                                    phantom_work=lambda: pol.check_code([ctx.phantom], code, ctx.policy, now))
            if isinstance(opened, Decision):
                return opened
            row, token_rows = opened
            result = self.prechecked.pop((tuple(token_rows), code, now), None) if self.prechecked else None
            if result is None:
                tokens = ctx.otp_tokens(row, token_rows)
                if not tokens and not ctx.oob_tokens(row, token_rows):
                    ctx.count_client_failure(door, client, now)
                    return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.NO_TOKEN)
                result = pol.check_code(tokens, code, ctx.policy, now)
            if result.ok and ctx.advance(result):
                ctx.clear_failures(row)
                return ctx.accept(row, door, client, now, Reason.OK, result.token_id)
            reason = result.reason if not result.ok else Reason.REPLAY
            sent_reason, sent_token = self.check_sent(row, token_rows, code, now)
            if sent_reason is Reason.OK:
                ctx.clear_failures(row)
                return ctx.accept(row, door, client, now, Reason.OK, sent_token)
            ctx.count_failure(row, _entry(code), door, client, now)
            return ctx.finish(user, door, client, now, Verdict.REJECT, sent_reason or reason, result.token_id)

    def resync(self, user: str, code1: str, code2: str, *, door: str, client: str, now: float) -> Decision:
        """Two consecutive codes over the wide resync range (policy.resync_window): audited as "resync"."""
        ctx = self.ctx
        with ctx.store.transaction():
            row = ctx.store.user(user)
            if row is None:
                return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.UNKNOWN_USER)
            result = pol.resync(ctx.otp_tokens(row), code1, code2, ctx.policy, now)
            if not result.ok or not ctx.advance(result):
                return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.WRONG_CODE)
            return ctx.finish(user, door, client, now, Verdict.ACCEPT, Reason.RESYNC, result.token_id)

    def check_sent(self, row: UserRow, token_rows: Sequence[TokenRow], code: str, now: float
                   ) -> tuple[Reason | None, int | None]:
        """A sent code given without its State (inside a transaction). (None, None): no sent code has this value
        (every pending one counts the wrong try); (OK, token id): accepted and used up; else the refusal."""
        ctx = self.ctx
        settings = {t.id: s for t, s in ctx.oob_tokens(row, token_rows)}
        pending = [c for c in ctx.store.code_challenges(row.id) if c.token_id in settings] if settings else []
        if not pending:
            return None, None
        given = oob.code_hash(ctx.sealer.fingerprint, row.id, code)
        match = next((c for c in pending if c.code_hash is not None and hmac.compare_digest(c.code_hash, given)),
                     None)
        if match is None:
            for c in pending:
                if 0 <= c.attempts < settings[c.token_id or 0].max_attempts and now < c.expires:
                    ctx.store.set_challenge_attempts(c.state, c.attempts + 1)
            return None, None
        assert match.code_hash is not None
        outcome, _ = oob.check_code(stored_hash=match.code_hash, given_hash=given, attempts=match.attempts,
                                    expires=match.expires, settings=settings[match.token_id or 0], now=now)
        if outcome is oob.CodeOutcome.ACCEPT:
            ctx.store.set_challenge_attempts(match.state, oob.USED)
            return Reason.OK, match.token_id
        reasons = {oob.CodeOutcome.USED: Reason.REPLAY, oob.CodeOutcome.EXPIRED: Reason.EXPIRED_CODE,
                   oob.CodeOutcome.EXHAUSTED: Reason.TOO_MANY_ATTEMPTS}
        return reasons.get(outcome, Reason.WRONG_CODE), match.token_id

    def matches(self, row: UserRow | None, token_rows: Sequence[TokenRow], code: str, now: float) -> bool:
        """Whether `code` is one of the user's codes right now (fresh or replayed, TOTP/HOTP or sent), without
        using it up: where the code ends in password+code. Unknown users cost the same HMACs."""
        ctx = self.ctx
        tokens = ctx.otp_tokens(row, token_rows) if row is not None else [ctx.phantom]
        result = pol.check_code(tokens, code, ctx.policy, now)
        if result.ok or result.reason is Reason.REPLAY:
            return row is not None
        if row is None or not any(t.type in oob.CHANNELS for t in token_rows):
            return False
        given = oob.code_hash(ctx.sealer.fingerprint, row.id, code)
        return any(c.code_hash is not None and hmac.compare_digest(c.code_hash, given)
                   for c in ctx.store.code_challenges(row.id))

    # -- a sent code answered with its State --------------------------------------------------------------------------

    def answer_sent(self, challenge: ChallengeRow, row: UserRow, code: str, *, door: str, client: str, now: float
                    ) -> Decision:
        """The State of a challenge that sent a code (or of a decoy: a challenge like it whose code was never sent),
        with the answer. Runs inside answer_challenge's transaction, after the challenge row was taken (deleted); it
        is put back as a tombstone or under a new State."""
        ctx, user = self.ctx, row.name
        settings = self._settings(row, challenge)
        if settings is None:  # the token was disabled or deleted meanwhile
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.BAD_STATE)
        if challenge.attempts == oob.USED:
            ctx.store.add_challenge(challenge)
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.REPLAY, challenge.token_id)
        if ctx.is_locked(row, now):
            return ctx.finish(user, door, client, now, Verdict.LOCKED, Reason.LOCKED)
        if now >= (challenge.state_expires or challenge.expires) and now < challenge.expires:
            ctx.store.add_challenge(challenge)  # the code itself stays good without its State, until it expires
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.EXPIRED_STATE, challenge.token_id)
        assert challenge.code_hash is not None
        outcome, attempts = oob.check_code(
            stored_hash=challenge.code_hash, given_hash=oob.code_hash(ctx.sealer.fingerprint, row.id, code),
            attempts=challenge.attempts, expires=challenge.expires, settings=settings, now=now)
        if outcome is oob.CodeOutcome.ACCEPT:
            ctx.store.add_challenge(challenge._replace(attempts=oob.USED))  # kept until expiry: a reuse is a replay
            ctx.clear_failures(row)
            return ctx.accept(row, door, client, now, Reason.OK, challenge.token_id)
        if outcome is oob.CodeOutcome.EXPIRED:
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.EXPIRED_CODE, challenge.token_id)
        if outcome is oob.CodeOutcome.EXHAUSTED and attempts == challenge.attempts:  # dead before this answer
            ctx.store.add_challenge(challenge)
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.TOO_MANY_ATTEMPTS, challenge.token_id)
        return self._wrong_answer(challenge, row, code, outcome, attempts, door=door, client=client, now=now)

    def _wrong_answer(self, challenge: ChallengeRow, row: UserRow, code: str, outcome: oob.CodeOutcome,
                      attempts: int, *, door: str, client: str, now: float) -> Decision:
        ctx, user = self.ctx, row.name
        reason = Reason.WRONG_CODE
        otp_tokens = ctx.otp_tokens(row)  # a user with an authenticator app too may answer with its code
        if otp_tokens:
            result = pol.check_code(otp_tokens, code, ctx.policy, now)
            if result.ok and ctx.advance(result):
                ctx.clear_failures(row)
                return ctx.accept(row, door, client, now, Reason.OK, result.token_id)
            if result.reason is Reason.REPLAY or result.ok:
                reason = Reason.REPLAY
        if ctx.count_failure(row, _entry(code), door, client, now):
            return ctx.finish(user, door, client, now, Verdict.LOCKED, Reason.LOCKED, challenge.token_id)
        return self.retry(challenge, attempts, outcome, user, reason, door=door, client=client, now=now)

    def retry(self, challenge: ChallengeRow, attempts: int, outcome: oob.CodeOutcome, user: str, reason: Reason, *,
              door: str, client: str, now: float) -> Decision:
        """After a wrong answer: the code's last chance was used (refused), or a new State for the same code."""
        ctx = self.ctx
        if outcome is oob.CodeOutcome.EXHAUSTED:
            ctx.store.add_challenge(challenge._replace(attempts=attempts))
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.TOO_MANY_ATTEMPTS, challenge.token_id)
        new_state = os.urandom(16)  # a State is single use: the next try gets a new one, for the same code
        ctx.store.add_challenge(challenge._replace(state=new_state, attempts=attempts,
                                        state_expires=min(challenge.expires, now + ctx.policy.challenge_timeout)))
        decision = ctx.finish(user, door, client, now, Verdict.CHALLENGE, reason, challenge.token_id)
        return decision._replace(state=new_state, message=RETRY_MESSAGE)

    def _settings(self, row: UserRow, challenge: ChallengeRow) -> oob.OobSettings | None:
        if challenge.token_id is None:  # a decoy: the policy's knobs
            return oob.settings_for(self.ctx.policy, {})
        return next((s for t, s in self.ctx.oob_tokens(row) if t.id == challenge.token_id), None)


def _entry(code: str) -> bytes:
    return code.encode("utf-8", "surrogatepass")
