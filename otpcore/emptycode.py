"""An empty code, from a door where the password was checked elsewhere (first_factor "none", the PAM module after
pam_unix): a code is sent if the user has an e-mail/SMS token, and every user name, known or not, with such a token or
not, gets the same challenge, so the answer tells nobody who exists or has which tokens. Where nothing was sent the
challenge is a decoy, answered as a real one is (wrong codes ask again, then refused), except that a user with an
authenticator app may answer it with the app's code. The decoy of a name nobody has belongs to nobody (user_id 0).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

from . import oob
from . import policy as pol
from .codecheck import CodeChecker
from .context import CHALLENGE_MESSAGE, VerifyContext
from .decision import Decision, Reason, Verdict
from .oobsend import SENT_REJECT_MESSAGE, CodeSender, sent_decision
from .store import ChallengeRow, UserRow

__all__ = ["EmptyCodes"]


class EmptyCodes:
    def __init__(self, ctx: VerifyContext, codes: CodeChecker, sender: CodeSender,
                 has_active_token: Callable[[str], bool]) -> None:
        self.ctx = ctx
        self.codes = codes
        self.sender = sender
        self._has_active_token = has_active_token

    def ask(self, user: str, *, door: str, client: str, now: float) -> Decision:
        """An empty code: a code sent if the user has somewhere to send it, and the same challenge for everybody."""
        ctx = self.ctx
        if ctx.throttled(door, client, now):
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.THROTTLED)
        row = ctx.store.user(user)
        if row is None:
            reason = Reason.UNKNOWN_USER
        elif ctx.is_locked(row, now):
            reason = Reason.LOCKED
        elif not ctx.oob_tokens(row):  # an authenticator app's code answers the challenge
            reason = Reason.CHALLENGE_SENT if self._has_active_token(user) else Reason.NO_TOKEN
        else:
            sent = self.sender.send(row, door=door, client=client, now=now, move_pending=ctx.policy.challenge)
            if sent.reason is Reason.DELIVERY_FAILED:
                return sent_decision(ctx, user, sent, door=door, client=client, now=now, challenge=False)
            if sent.state is not None:
                return self._uniform(user, sent.reason, sent.state, sent.token_id, door=door, client=client, now=now)
            reason = sent.reason
        # Nothing sent: a decoy challenge, answered as a real one is (wrong codes ask again, then refused), except
        # that a user with an authenticator app may answer it with the app's code.
        state = self._decoy(row, user, client, now) if ctx.policy.challenge else None
        return self._uniform(user, reason, state, None, door=door, client=client, now=now)

    def _uniform(self, user: str, reason: Reason, state: bytes | None, token_id: int | None, *, door: str,
                 client: str, now: float) -> Decision:
        if state is None:  # policy.challenge off: "log in again with the code", sent or not
            decision = self.ctx.finish(user, door, client, now, Verdict.REJECT, reason, token_id)
            return decision._replace(message=SENT_REJECT_MESSAGE)
        decision = self.ctx.finish(user, door, client, now, Verdict.CHALLENGE, reason, token_id)
        return decision._replace(state=state, message=CHALLENGE_MESSAGE)

    def _decoy(self, row: UserRow | None, user: str, client: str, now: float) -> bytes:
        """A challenge like the one of a sent code, for a code that was never sent (user_id 0: nobody's)."""
        ctx = self.ctx
        settings = oob.settings_for(ctx.policy, {})
        state = os.urandom(16)
        code_hash = os.urandom(16) if row is not None else self._phantom_hash(user)
        with ctx.store.transaction():
            ctx.store.purge_challenges(now)
            ctx.store.add_challenge(ChallengeRow(
                state=state, user_id=row.id if row is not None else 0, client=client, token_id=None, created=now,
                expires=now + settings.validity, code_hash=code_hash, attempts=0,
                state_expires=now + min(settings.validity, ctx.policy.challenge_timeout)))
        return state

    def _phantom_hash(self, user: str) -> bytes:
        return self.ctx.sealer.fingerprint(b"phantom", user.encode("utf-8", "surrogatepass"))

    def answer_phantom(self, challenge: ChallengeRow, user: str, code: str, *, door: str, client: str, now: float
                        ) -> Decision:
        """An answer to the decoy challenge of an unknown user: refused the way a wrong code of a real one is."""
        ctx = self.ctx
        assert challenge.code_hash is not None
        if not hmac.compare_digest(challenge.code_hash, self._phantom_hash(user)):
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.BAD_STATE)
        if ctx.phantom_locked(user, now):
            return ctx.finish(user, door, client, now, Verdict.LOCKED, Reason.UNKNOWN_USER)
        if now >= (challenge.state_expires or challenge.expires) and now < challenge.expires:
            ctx.store.add_challenge(challenge)
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.EXPIRED_STATE)
        pol.check_code([ctx.phantom], code, ctx.policy, now)  # the work a real answer costs
        outcome, attempts = oob.check_code(stored_hash=challenge.code_hash, given_hash=bytes(16),
                                           attempts=challenge.attempts, expires=challenge.expires,
                                           settings=oob.settings_for(ctx.policy, {}), now=now)
        if outcome is oob.CodeOutcome.EXPIRED:
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.EXPIRED_CODE)
        if outcome is oob.CodeOutcome.EXHAUSTED and attempts == challenge.attempts:
            ctx.store.add_challenge(challenge)
            return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.TOO_MANY_ATTEMPTS)
        if ctx.count_failure(None, code.encode("utf-8", "surrogatepass"), door, client, now, user=user):
            return ctx.finish(user, door, client, now, Verdict.LOCKED, Reason.UNKNOWN_USER)
        return self.codes.retry(challenge, attempts, outcome, user, Reason.UNKNOWN_USER, door=door, client=client,
                                now=now)
