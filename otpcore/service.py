"""The verification service every door calls: first factor, code, lockout, challenge, audit.

Each call reads the state, decides with the sans-I/O policy and commits the change and its audit row in one
transaction. Slow first-factor checks (argon2, PAM) run before that transaction, never inside it. A server may check
codes ahead, outside any transaction (`precheck`); such a result is used only if the rows read inside the transaction
are the very ones it was computed from.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from . import oob
from . import policy as pol
from .config import Config, Policy
from .decision import Decision, Reason, Verdict
from .delivery_config import DeliveryConfig
from .passwords import burn_time, verify_password
from .seal import Sealer, load_key_file
from .store import ChallengeRow, Store, TokenRow, UserRow

__all__ = ["CHALLENGE_MESSAGE", "NOT_SENT_MESSAGE", "PENDING_MESSAGE", "REJECT_MESSAGE", "RETRY_MESSAGE",
           "SENT_MESSAGES", "SENT_REJECT_MESSAGE", "WAIT_MESSAGE", "Verifier", "token_identity"]

log = logging.getLogger("otpcore.service")

CHALLENGE_MESSAGE = "Enter your one-time password"
REJECT_MESSAGE = "Authentication failed"
WELCOME_MESSAGE = "Welcome"
_MESSAGES = {Verdict.ACCEPT: WELCOME_MESSAGE, Verdict.CHALLENGE: CHALLENGE_MESSAGE}
_OPENED_MAX = 200_000  # unsealed secrets kept per verifier (about 25 MB for 100 000 tokens)
_PRECHECKED_MAX = 4096  # precheck() results waiting for their login()
# email/sms codes (issue 5)
SENT_MESSAGES = {("email",): "Enter the code sent to you by e-mail", ("sms",): "Enter the code sent to you by SMS",
                 ("email", "sms"): "Enter the code sent to you by e-mail and SMS"}
PENDING_MESSAGE = "Enter the code sent to you earlier"
RETRY_MESSAGE = "Wrong code, try again"
NOT_SENT_MESSAGE = "The code could not be sent, try again later"
WAIT_MESSAGE = "A code was sent recently, wait before asking again"
SENT_REJECT_MESSAGE = "A code has been sent to you, log in again with it"
# Users who do not exist are checked as if they had one 6-digit token, so they cost what a real user costs.
_PHANTOM_DIGITS = (6,)

FirstFactor = Callable[[str, bytes], bool]


def token_identity(token_id: int) -> bytes:
    """Associated data binding a sealed secret to its token row."""
    return b"otp-token:%d" % token_id


class Verifier:
    def __init__(self, store: Store, sealer: Sealer, policy: Policy, *, delivery: oob.Deliverer | None = None,
                 delivery_config: DeliveryConfig | None = None) -> None:
        self.store = store
        self.sealer = sealer
        self.policy = policy
        self.delivery = delivery  # sends email/sms codes; made from delivery_config when first needed
        self._delivery_config = delivery_config
        self._opened: dict[tuple[int, bytes], bytes] = {}  # (token id, sealed secret) -> secret
        # precheck(): (the user's active token rows, code, now) -> pol.check_code's result for them
        self._prechecked: dict[tuple[tuple[TokenRow, ...], str, float], pol.CodeCheck] = {}

    @classmethod
    def open(cls, config: Config) -> Verifier:
        sealer = load_key_file(config.store.key_file)
        return cls(Store.open(config.store.path), sealer, config.policy, delivery_config=config.delivery)

    def close(self) -> None:
        self.store.close()

    @contextmanager
    def batch(self, users: Sequence[str] = ()) -> Iterator[None]:
        """One transaction around several calls (group commit): their writes become durable together, at its end,
        so a door must answer none of them before the block is left. Only for `batchable` calls: the write lock is
        held throughout, so nothing slow (argon2, PAM, a code sent by mail) may run inside. `users`: the users the
        calls are for, read together at the start."""
        with self.store.transaction():
            if users:
                self.store.prefetch(users)
            yield

    @staticmethod
    def batchable(password: bytes | None, first_factor: str, state: bytes | None) -> bool:
        """Whether login() of this request is a code check alone (first_factor "none", a code, no State): store
        reads and writes and HMACs only, so it may share a `batch()` with others."""
        return first_factor == "none" and bool(password) and state is None

    def precheck(self, logins: Sequence[tuple[str, bytes, str]], *, now: float) -> None:
        """Before a batch takes the write lock: check the codes of batchable login() calls (user, password,
        first_factor) against the users' tokens as they are now, outside any transaction, so that unsealing and HMACs
        are done while another process may hold the lock. pol.check_code is pure, so its result is kept by its
        inputs (and this verifier's policy, which never changes): login() uses it only if it reads the very same
        token rows under the lock (and the same code and time), else checks afresh."""
        codes = [(user, password) for user, password, first_factor in logins
                 if self.batchable(password, first_factor, None)]
        if not codes:
            return
        if len(self._prechecked) >= _PRECHECKED_MAX:  # results whose login() never came
            self._prechecked.clear()
        found = self.store.users_with_tokens([user for user, _ in codes])
        for user, password in codes:
            row, token_rows = found[user]
            tokens = self._otp_tokens(row, token_rows)
            if tokens:
                code = password.decode("ascii", "replace")
                self._prechecked[(tuple(token_rows), code, now)] = pol.check_code(tokens, code, self.policy, now)

    # -- the doors' entry points --------------------------------------------------------------------------------------

    def login(self, user: str, password: bytes, *, first_factor: str, door: str, client: str, now: float) -> Decision:
        """A RADIUS-style login: `password` is password+code in one (or the code alone with first_factor "none").

        The password alone (first factor right, no code) answers with a challenge when the policy allows it.
        """
        if first_factor == "none" and password:
            # The code alone: _check_code reads the user and the tokens once, under the write lock.
            return self._check_code(user, password.decode("ascii", "replace"), door=door, client=client, now=now)
        row = self.store.user(user)
        tokens = self._otp_tokens(row)
        if first_factor == "none":
            if row is None:
                return self._finish(user, None, door, client, now, Verdict.REJECT, Reason.UNKNOWN_USER)
            if not password and self._oob_tokens(row):  # an empty password asks for an email/sms code
                return self._send_code(row, door=door, client=client, now=now, challenge=self.policy.challenge)
            return self._check_code(row.name, password.decode("ascii", "replace"), door=door, client=client, now=now)

        check = self._first_factor(first_factor, user)
        oob_settings = [s for _, s in self._oob_tokens(row)] if row else []
        # A user without any token is split like an unknown user, so both cost what a user with a token costs
        # (the split leads nowhere for them: _check_code refuses with no_token).
        digit_lengths = (sorted({t.digits for t in tokens} | {s.length for s in oob_settings}, reverse=True) if row
                         else []) or list(_PHANTOM_DIGITS)
        for digits in digit_lengths:
            if len(password) <= digits:
                continue
            password_part, code_part = password[:-digits], password[-digits:]
            if not (code_part.isascii() and (code_part.isdigit() or any(
                    oob.looks_like_code(oob.normalize_code(code_part.decode()), s) for s in oob_settings))):
                continue
            verdict = check(row, password_part)
            if verdict is None:
                return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.FIRST_FACTOR_UNAVAILABLE)
            if verdict and row is not None:
                return self._check_code(row.name, code_part.decode(), door=door, client=client, now=now)

        # The password alone only leads somewhere with a challenge, an email/sms code or no token at all; otherwise
        # skip a second (argon2 or PAM) check. Unknown users follow the rule of a user with one TOTP token.
        if not (self.policy.challenge or (row is not None and (oob_settings or not tokens))):
            reason = Reason.UNKNOWN_USER if row is None else Reason.WRONG_PASSWORD
            return self._finish(user, row, door, client, now, Verdict.REJECT, reason)
        verdict = check(row, password)
        if verdict is None:
            return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.FIRST_FACTOR_UNAVAILABLE)
        if not verdict or row is None:
            reason = Reason.UNKNOWN_USER if row is None else Reason.WRONG_PASSWORD
            return self._finish(user, row, door, client, now, Verdict.REJECT, reason)
        return self._password_only(row, tokens, door=door, client=client, now=now)

    def verify_code(self, user: str, code: str, *, door: str, client: str, now: float) -> Decision:
        """The code alone (the password was checked elsewhere, e.g. by pam_unix, or there is none).

        An empty code, for a user with an email/sms token, asks for a code to be sent (a challenge).
        """
        if not code.strip():
            row = self.store.user(user)
            if row is not None and self._oob_tokens(row):
                return self._send_code(row, door=door, client=client, now=now, challenge=self.policy.challenge)
        return self._check_code(user, code, door=door, client=client, now=now)

    def send_code(self, user: str, *, door: str, client: str, now: float, force: bool = False) -> Decision:
        """Send a code to the user's email/sms tokens now, for a help desk (`otp-admin token send`): CHALLENGE with a
        State on success. The code is also accepted without the State (`token verify`, password+code, or the next
        challenge within the resend interval). `force` ignores the resend interval."""
        row = self.store.user(user)
        if row is None:
            return self._finish(user, None, door, client, now, Verdict.REJECT, Reason.UNKNOWN_USER)
        return self._send_code(row, door=door, client=client, now=now, challenge=True, force=force, rekey=False)

    def answer_challenge(self, state: bytes, user: str, code: bytes, *, door: str, client: str, now: float
                         ) -> Decision:
        """Second leg: the State from our Access-Challenge and the code alone."""
        with self.store.transaction():
            challenge = self.store.take_challenge(state)
            row = self.store.user_by_id(challenge.user_id) if challenge else None
            if challenge is None or row is None or row.name != user or challenge.client != client:
                return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.BAD_STATE)
            if challenge.code_hash is not None:
                return self._answer_sent_code(challenge, row, code.decode("ascii", "replace"), door=door,
                                              client=client, now=now)
            if now >= challenge.expires:
                return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.EXPIRED_STATE)
            return self._check_code(row.name, code.decode("ascii", "replace"), door=door, client=client, now=now)

    def has_active_token(self, user: str) -> bool:
        row = self.store.user(user)
        return row is not None and bool(self.store.tokens(row.id, active_only=True))

    def resync(self, user: str, code1: str, code2: str, *, door: str, client: str, now: float) -> Decision:
        with self.store.transaction():
            row = self.store.user(user)
            if row is None:
                return self._finish(user, None, door, client, now, Verdict.REJECT, Reason.UNKNOWN_USER)
            result = pol.resync(self._otp_tokens(row), code1, code2, self.policy, now)
            if not result.ok or not self._advance(result):
                return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.WRONG_CODE)
            return self._finish(user, row, door, client, now, Verdict.ACCEPT, Reason.OK, result.token_id)

    # -- steps --------------------------------------------------------------------------------------------------------

    def _check_code(self, user: str, code: str, *, door: str, client: str, now: float) -> Decision:
        with self.store.transaction():
            row, token_rows = self.store.user_with_tokens(user)  # under the write lock: the state we decide on
            if row is None:
                return self._finish(user, None, door, client, now, Verdict.REJECT, Reason.UNKNOWN_USER)
            failures = pol.FailureState(row.failures, row.last_bad, row.locked_at)
            if pol.is_locked(failures, self.policy, now):
                return self._finish(user, row, door, client, now, Verdict.LOCKED, Reason.LOCKED)
            result = self._prechecked.pop((tuple(token_rows), code, now), None) if self._prechecked else None
            if result is None:
                tokens = self._otp_tokens(row, token_rows)
                if not tokens and not self._oob_tokens(row, token_rows):
                    return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.NO_TOKEN)
                result = pol.check_code(tokens, code, self.policy, now)
            if result.ok and self._advance(result):
                if failures != pol.CLEAR:
                    self.store.set_failure_state(row.id, failures=0, last_bad=None, locked_at=None)
                return self._finish(user, row, door, client, now, Verdict.ACCEPT, Reason.OK, result.token_id)
            reason = result.reason if not result.ok else Reason.REPLAY
            sent_reason, sent_token = self._check_sent_code(row, token_rows, code, now)
            if sent_reason is Reason.OK:
                if failures != pol.CLEAR:
                    self.store.set_failure_state(row.id, failures=0, last_bad=None, locked_at=None)
                return self._finish(user, row, door, client, now, Verdict.ACCEPT, Reason.OK, sent_token)
            if sent_reason is not None:
                reason = sent_reason
            fingerprint = self.sealer.fingerprint(b"code", b"%d" % row.id, code.encode("utf-8", "surrogatepass"))
            new = pol.record_failure(failures, fingerprint, self.policy, now)
            if new != failures:
                self.store.set_failure_state(row.id, failures=new.failures, last_bad=new.last_bad,
                                             locked_at=new.locked_at)
            return self._finish(user, row, door, client, now, Verdict.REJECT, reason, result.token_id)

    def _password_only(self, row: UserRow, tokens: Sequence[pol.OtpToken], *, door: str, client: str, now: float
                       ) -> Decision:
        if self._oob_tokens(row):  # the password opens the way to an email/sms code
            return self._send_code(row, door=door, client=client, now=now, challenge=self.policy.challenge)
        if not tokens:
            if self.policy.no_token == "accept":
                return self._finish(row.name, row, door, client, now, Verdict.ACCEPT, Reason.NO_TOKEN_ACCEPTED)
            return self._finish(row.name, row, door, client, now, Verdict.REJECT, Reason.NO_TOKEN)
        failures = pol.FailureState(row.failures, row.last_bad, row.locked_at)
        if pol.is_locked(failures, self.policy, now):
            return self._finish(row.name, row, door, client, now, Verdict.LOCKED, Reason.LOCKED)
        if not self.policy.challenge:
            return self._finish(row.name, row, door, client, now, Verdict.REJECT, Reason.WRONG_CODE)
        state = os.urandom(16)
        with self.store.transaction():
            self.store.purge_challenges(now)
            self.store.add_challenge(ChallengeRow(state=state, user_id=row.id, client=client, token_id=None,
                                                  created=now, expires=now + self.policy.challenge_timeout,
                                                  code_hash=None, attempts=0))
            decision = self._finish(row.name, row, door, client, now, Verdict.CHALLENGE, Reason.CHALLENGE_SENT)
        return Decision(decision.verdict, decision.reason, decision.user, state=state, message=CHALLENGE_MESSAGE)

    # -- email/sms codes ----------------------------------------------------------------------------------------------
    # A code is made when the user passed the first factor, stored only as a keyed hash in a challenge row (expiry =
    # the code's validity, attempts = wrong answers so far, or oob.USED once accepted), sent outside any transaction,
    # and accepted once: with the State of its challenge, or without it (password+code, `otp-admin token verify`).

    def _send_code(self, row: UserRow, *, door: str, client: str, now: float, challenge: bool, force: bool = False,
                   rekey: bool = True) -> Decision:
        user = row.name
        failures = pol.FailureState(row.failures, row.last_bad, row.locked_at)
        if pol.is_locked(failures, self.policy, now):
            return self._finish(user, row, door, client, now, Verdict.LOCKED, Reason.LOCKED)
        tokens = self._oob_tokens(row)
        if not tokens:
            return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.NO_TOKEN)
        primary, settings = tokens[0]  # the first token's knobs make the code; every token gets it (email + sms)
        targets = [(t, row.email if t.type == "email" else row.phone) for t, _ in tokens]
        for t, address in targets:
            if not address:
                log.warning("user=%s token=%d: no %s in the user's profile", user, t.id,
                            "e-mail address" if t.type == "email" else "phone number")
        targets = [(t, address) for t, address in targets if address]
        if not targets:
            return self._not_sent(row, door, client, now)
        code = oob.generate_code(settings)
        state = os.urandom(16)
        with self.store.transaction():
            self.store.purge_challenges(now)
            current = self.store.token(primary.id)  # re-read under the write lock: another process may have sent
            wait = 0.0 if force or current is None else oob.resend_wait(oob.last_sent(current.options), settings, now)
            if wait > 0:
                return self._resend_too_soon(row, state, settings, door=door, client=client, now=now,
                                             rekey=challenge and rekey)
            for old in self.store.code_challenges(row.id):  # a new code replaces the ones still pending
                if old.attempts != oob.USED:
                    self.store.delete_challenge(old.state)
            for t, _ in targets:
                self.store.set_token_option(t.id, "last_sent", now)
            self.store.add_challenge(ChallengeRow(
                state=state, user_id=row.id, client=client, token_id=primary.id, created=now,
                expires=now + settings.validity, code_hash=oob.code_hash(self.sealer.fingerprint, row.id, code),
                attempts=0))
        # The network, outside the transaction: the store stays writable for everybody else meanwhile.
        messages = [oob.Outgoing(t.type, address, user, code, settings.validity) for t, address in targets]
        errors = self._deliver(messages)
        sent = tuple(sorted({m.channel for m, error in zip(messages, errors, strict=True) if error is None}))
        if not sent:
            with self.store.transaction():
                self.store.delete_challenge(state)
                return self._not_sent(row, door, client, now)
        with self.store.transaction():
            for m, error in zip(messages, errors, strict=True):
                if error is not None:  # one channel of two failed: the code went the other way
                    self.store.audit(now=now, user=user, door=door, client=client, result="error",
                                     reason=f"{Reason.DELIVERY_FAILED.value}_{m.channel}")
            if not challenge:
                decision = self._finish(user, row, door, client, now, Verdict.REJECT, Reason.CODE_SENT, primary.id)
                return decision._replace(message=SENT_REJECT_MESSAGE)
            decision = self._finish(user, row, door, client, now, Verdict.CHALLENGE, Reason.CHALLENGE_SENT, primary.id)
        return decision._replace(state=state, message=SENT_MESSAGES.get(sent, CHALLENGE_MESSAGE))

    def _resend_too_soon(self, row: UserRow, state: bytes, settings: oob.OobSettings, *, door: str, client: str,
                         now: float, rekey: bool) -> Decision:
        """No new code yet. With `rekey`, a code still pending moves to a new State, so the user can finish with it."""
        pending = next((c for c in self.store.code_challenges(row.id)
                        if 0 <= c.attempts < settings.max_attempts and now < c.expires), None)
        if pending is not None and rekey:
            self.store.delete_challenge(pending.state)
            self.store.add_challenge(replace(pending, state=state, client=client))
            decision = self._finish(row.name, row, door, client, now, Verdict.CHALLENGE, Reason.RESEND_TOO_SOON,
                                    pending.token_id)
            return decision._replace(state=state, message=PENDING_MESSAGE)
        decision = self._finish(row.name, row, door, client, now, Verdict.REJECT, Reason.RESEND_TOO_SOON)
        return decision._replace(message=WAIT_MESSAGE)

    def _not_sent(self, row: UserRow, door: str, client: str, now: float) -> Decision:
        decision = self._finish(row.name, row, door, client, now, Verdict.REJECT, Reason.DELIVERY_FAILED)
        return decision._replace(message=NOT_SENT_MESSAGE)

    def _deliver(self, messages: Sequence[oob.Outgoing]) -> list[str | None]:
        if self.delivery is None and self._delivery_config is not None:
            from .delivery import Sender  # smtplib, http.client, ssl: only for the logins that send a code

            self.delivery = Sender(self._delivery_config)
        if self.delivery is None:
            log.warning("user=%s: no delivery configured ([delivery.smtp] / [delivery.sms])", messages[0].user)
            return ["no delivery configured"] * len(messages)
        try:
            return self.delivery.send_all(messages)
        except Exception as exc:  # a broken sender must not break the login: the code was not sent
            log.exception("user=%s: delivery failed", messages[0].user)
            return [f"delivery failed: {type(exc).__name__}"] * len(messages)

    def _answer_sent_code(self, challenge: ChallengeRow, row: UserRow, code: str, *, door: str, client: str,
                          now: float) -> Decision:
        """The State of a challenge that sent a code, with the answer. Runs inside answer_challenge's transaction,
        after the challenge row was taken (deleted); it is put back as a tombstone or under a new State."""
        user = row.name
        settings = next((s for t, s in self._oob_tokens(row) if t.id == challenge.token_id), None)
        if settings is None:  # the token was disabled or deleted meanwhile
            return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.BAD_STATE)
        if challenge.attempts == oob.USED:
            self.store.add_challenge(challenge)
            return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.REPLAY, challenge.token_id)
        failures = pol.FailureState(row.failures, row.last_bad, row.locked_at)
        if pol.is_locked(failures, self.policy, now):
            return self._finish(user, row, door, client, now, Verdict.LOCKED, Reason.LOCKED)
        assert challenge.code_hash is not None
        outcome, attempts = oob.check_code(
            stored_hash=challenge.code_hash, given_hash=oob.code_hash(self.sealer.fingerprint, row.id, code),
            attempts=challenge.attempts, expires=challenge.expires, settings=settings, now=now)
        if outcome is oob.CodeOutcome.ACCEPT:
            self.store.add_challenge(replace(challenge, attempts=oob.USED))  # kept until expiry: a reuse is a replay
            if failures != pol.CLEAR:
                self.store.set_failure_state(row.id, failures=0, last_bad=None, locked_at=None)
            return self._finish(user, row, door, client, now, Verdict.ACCEPT, Reason.OK, challenge.token_id)
        if outcome is oob.CodeOutcome.EXPIRED:
            return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.EXPIRED_CODE, challenge.token_id)
        if outcome is oob.CodeOutcome.EXHAUSTED and attempts == challenge.attempts:  # dead before this answer
            self.store.add_challenge(challenge)
            return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.TOO_MANY_ATTEMPTS,
                                challenge.token_id)
        reason = Reason.WRONG_CODE
        otp_tokens = self._otp_tokens(row)  # a user with an authenticator app too may answer with its code
        if otp_tokens:
            result = pol.check_code(otp_tokens, code, self.policy, now)
            if result.ok and self._advance(result):
                if failures != pol.CLEAR:
                    self.store.set_failure_state(row.id, failures=0, last_bad=None, locked_at=None)
                return self._finish(user, row, door, client, now, Verdict.ACCEPT, Reason.OK, result.token_id)
            if result.reason is Reason.REPLAY or result.ok:
                reason = Reason.REPLAY
        fingerprint = self.sealer.fingerprint(b"code", b"%d" % row.id, code.encode("utf-8", "surrogatepass"))
        new = pol.record_failure(failures, fingerprint, self.policy, now)
        if new != failures:
            self.store.set_failure_state(row.id, failures=new.failures, last_bad=new.last_bad, locked_at=new.locked_at)
        if pol.is_locked(new, self.policy, now):
            return self._finish(user, row, door, client, now, Verdict.LOCKED, Reason.LOCKED, challenge.token_id)
        if outcome is oob.CodeOutcome.EXHAUSTED:
            self.store.add_challenge(replace(challenge, attempts=attempts))
            return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.TOO_MANY_ATTEMPTS,
                                challenge.token_id)
        new_state = os.urandom(16)  # a State is single use: the next try gets a new one, for the same code
        self.store.add_challenge(replace(challenge, state=new_state, attempts=attempts))
        decision = self._finish(user, row, door, client, now, Verdict.CHALLENGE, reason, challenge.token_id)
        return decision._replace(state=new_state, message=RETRY_MESSAGE)

    def _check_sent_code(self, row: UserRow, token_rows: Sequence[TokenRow], code: str, now: float
                         ) -> tuple[Reason | None, int | None]:
        """A sent code given without its State (inside _check_code's transaction). (None, None): no sent code has
        this value (every pending one counts the wrong try); (OK, token id): accepted and used up; else the refusal."""
        settings = {t.id: s for t, s in self._oob_tokens(row, token_rows)}
        pending = [c for c in self.store.code_challenges(row.id) if c.token_id in settings]
        if not pending:
            return None, None
        given = oob.code_hash(self.sealer.fingerprint, row.id, code)
        match = next((c for c in pending if c.code_hash is not None and hmac.compare_digest(c.code_hash, given)),
                     None)
        if match is None:
            for c in pending:
                s = settings[c.token_id or 0]
                if 0 <= c.attempts < s.max_attempts and now < c.expires:
                    self.store.set_challenge_attempts(c.state, c.attempts + 1)
            return None, None
        assert match.code_hash is not None
        outcome, _ = oob.check_code(stored_hash=match.code_hash, given_hash=given, attempts=match.attempts,
                                    expires=match.expires, settings=settings[match.token_id or 0], now=now)
        if outcome is oob.CodeOutcome.ACCEPT:
            self.store.set_challenge_attempts(match.state, oob.USED)
            return Reason.OK, match.token_id
        reasons = {oob.CodeOutcome.USED: Reason.REPLAY, oob.CodeOutcome.EXPIRED: Reason.EXPIRED_CODE,
                   oob.CodeOutcome.EXHAUSTED: Reason.TOO_MANY_ATTEMPTS}
        return reasons.get(outcome, Reason.WRONG_CODE), match.token_id

    def _oob_tokens(self, row: UserRow | None, rows: Sequence[TokenRow] | None = None
                    ) -> list[tuple[TokenRow, oob.OobSettings]]:
        """The user's active email/sms tokens with the knobs in force for each, oldest first (from `rows`, the
        user's active tokens, when the caller has read them)."""
        if row is None:
            return []
        if rows is None:
            rows = self.store.tokens(row.id, active_only=True)
        return [(t, oob.settings_for(self.policy, oob.load_options(t.options))) for t in rows if t.type in oob.CHANNELS]

    def _advance(self, result: pol.CodeCheck) -> bool:
        assert result.token_id is not None
        if result.kind == "hotp":
            return self.store.advance_hotp(result.token_id, expected=result.expected, new_counter=result.new_value)
        return self.store.advance_totp(result.token_id, expected=result.expected, new_step=result.new_value,
                                       drift=result.drift)

    def _finish(self, user: str, row: UserRow | None, door: str, client: str, now: float, verdict: Verdict,
                reason: Reason, token_id: int | None = None) -> Decision:
        # One statement: inside a transaction it is written at its end, with the others (Store.audit)
        self.store.audit(now=now, user=user, door=door, client=client, result=verdict, reason=reason)
        return Decision(verdict, reason, user, token_id=token_id, message=_MESSAGES.get(verdict, REJECT_MESSAGE))

    # -- helpers ------------------------------------------------------------------------------------------------------

    def _otp_tokens(self, row: UserRow | None, rows: Sequence[TokenRow] | None = None) -> list[pol.OtpToken]:
        """The user's active TOTP/HOTP tokens, unsealed (from `rows`, as _oob_tokens)."""
        if row is None:
            return []
        if rows is None:
            rows = self.store.tokens(row.id, active_only=True)
        return [self._unseal(t) for t in rows if t.type in pol.OTP_TYPES]

    def _unseal(self, t: TokenRow) -> pol.OtpToken:
        assert t.secret is not None
        # Secrets opened before are kept by their sealed value: a changed secret is sealed anew (a fresh nonce), so
        # it never matches an old entry. The mutable state (counter, last step, drift) comes from the row.
        key = (t.id, t.secret)
        secret = self._opened.get(key)
        if secret is None:
            secret = self.sealer.open(t.secret, token_identity(t.id))
            if len(self._opened) >= _OPENED_MAX:
                self._opened.clear()
            self._opened[key] = secret
        return pol.OtpToken(t.id, t.type, secret, t.algorithm, t.digits, t.period, t.t0, t.counter, t.last_step,
                            t.drift, t.window)

    def _first_factor(self, mode: str, user: str) -> Callable[[UserRow | None, bytes], bool | None]:
        """A checker returning True / False, or None when the first factor cannot be checked (PAM failure)."""
        if mode == "store":
            def check_store(row: UserRow | None, password: bytes) -> bool | None:
                if row is None:
                    burn_time(password)
                    return False
                return verify_password(row.password_hash, password)
            return check_store
        if mode == "pam":
            service = self.policy.pam_service

            def check_pam(row: UserRow | None, password: bytes) -> bool | None:
                if row is None:
                    # Not in the store: still ask PAM (its hashing and fail delay), so timing tells nobody that.
                    pam_authenticate(user, password, service)
                    return False
                return pam_authenticate(row.name, password, service)
            return check_pam
        raise ValueError(f"unknown first factor {mode!r}")


def pam_authenticate(user: str, password: bytes, service: str) -> bool | None:
    """The system's PAM stack `service` checks the password (python-pam). None if PAM itself fails."""
    import pam  # python-pam: loaded only by deployments that use first_factor = "pam"

    try:
        return bool(pam.authenticate(user, password, service=service, resetcreds=False))
    except Exception:  # libpam or ctypes failure: fail closed, reported as unavailable
        return None
