"""Checking a challenge-response login (CHAP, MS-CHAP, MS-CHAPv2; otpcore.chap) the way a code sent in the clear is
checked (otpcore.codecheck): in one transaction that reads the state it decides on under the write lock; the matching
code consumed by compare-and-set (a replay is refused); a failure counted toward the user's lockout and the client's
throttle. Store reads and writes, hashes and one unsealing: no slow first factor, so it may share a group commit.

With first factor "none" the candidates are the codes; with "store", the user's reversible password followed by each
code (the response proves both at once, so a refusal cannot say which one was wrong). Email/sms codes cannot be
candidates: the store keeps only their hashes.
"""

from __future__ import annotations

import os

from . import policy as pol
from .chap import FIRST_FACTORS, Response
from .context import VerifyContext
from .decision import Decision, Reason, Verdict
from .errors import SealError
from .seal import password_identity
from .store import UserRow

__all__ = ["ResponseChecker"]


class ResponseChecker:
    def __init__(self, ctx: VerifyContext) -> None:
        self.ctx = ctx
        self._decoy_password = os.urandom(12).hex()  # tried for users without a reversible password: the same cost

    def check(self, user: str, response: Response, *, first_factor: str, door: str, client: str, now: float
              ) -> Decision:
        if first_factor not in FIRST_FACTORS:
            raise ValueError(f"first factor {first_factor!r} cannot check a challenge-response login")
        ctx = self.ctx
        decoy = self._decoy_password if first_factor == "store" else ""
        with ctx.store.transaction():
            opened = ctx.open_check(user, response.entry, door=door, client=client, now=now, phantom_work=lambda: (
                pol.check_response([ctx.phantom], lambda code: response.matches(decoy + code), ctx.policy, now)))
            if isinstance(opened, Decision):
                return opened
            row, token_rows = opened
            tokens = ctx.otp_tokens(row, token_rows)
            if not tokens:
                ctx.count_client_failure(door, client, now)
                return ctx.finish(user, door, client, now, Verdict.REJECT, Reason.NO_TOKEN)
            password = self._password(row) if first_factor == "store" else ""
            prefix = self._decoy_password if password is None else password
            result = pol.check_response(tokens, lambda code: response.matches(prefix + code), ctx.policy, now)
            if password is not None and result.ok and ctx.advance(result):
                ctx.clear_failures(row)
                return ctx.finish(user, door, client, now, Verdict.ACCEPT, Reason.OK, result.token_id)
            reason = _refusal(result, password, first_factor)
            locked = ctx.count_failure(row, response.entry, door, client, now)
            return ctx.finish(user, door, client, now, Verdict.LOCKED if locked else Verdict.REJECT, reason,
                              result.token_id)

    def _password(self, row: UserRow) -> str | None:
        """The user's reversible password, unsealed; None when the user has none."""
        sealed = self.ctx.store.reversible_password(row.id)
        if sealed is None:
            return None
        try:
            return self.ctx.sealer.open(sealed, password_identity(row.id, row.name)).decode("utf-8")
        except SealError:
            raise SealError(f"the reversible password of user {row.id} does not open: the key file is not this "
                            "store's, or the row was changed without the key") from None


def _refusal(result: pol.CodeCheck, password: str | None, first_factor: str) -> Reason:
    if password is None:
        return Reason.NO_PASSWORD
    if result.ok or result.reason is Reason.REPLAY:  # matched, but used already (or by a login that won the race)
        return Reason.REPLAY
    return Reason.WRONG_CODE if first_factor == "none" else Reason.WRONG_RESPONSE
