"""The verification service every door calls: first factor, code, lockout, challenge, audit.

Each call reads the state, decides with the sans-I/O policy and commits the change and its audit row in one
transaction. Slow first-factor checks (argon2, PAM) run before that transaction, never inside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from . import policy as pol
from .config import Config, Policy
from .decision import Decision, Reason, Verdict
from .passwords import burn_time, verify_password
from .seal import Sealer, load_key_file
from .store import ChallengeRow, Store, TokenRow, UserRow

__all__ = ["CHALLENGE_MESSAGE", "REJECT_MESSAGE", "Verifier", "token_identity"]

CHALLENGE_MESSAGE = "Enter your one-time password"
REJECT_MESSAGE = "Authentication failed"
WELCOME_MESSAGE = "Welcome"
# Users who do not exist are checked as if they had one 6-digit token, so they cost what a real user costs.
_PHANTOM_DIGITS = (6,)

FirstFactor = Callable[[str, bytes], bool]


def token_identity(token_id: int) -> bytes:
    """Associated data binding a sealed secret to its token row."""
    return b"otp-token:%d" % token_id


class Verifier:
    def __init__(self, store: Store, sealer: Sealer, policy: Policy) -> None:
        self.store = store
        self.sealer = sealer
        self.policy = policy

    @classmethod
    def open(cls, config: Config) -> Verifier:
        sealer = load_key_file(config.store.key_file)
        return cls(Store.open(config.store.path), sealer, config.policy)

    def close(self) -> None:
        self.store.close()

    # -- the doors' entry points --------------------------------------------------------------------------------------

    def login(self, user: str, password: bytes, *, first_factor: str, door: str, client: str, now: float) -> Decision:
        """A RADIUS-style login: `password` is password+code in one (or the code alone with first_factor "none").

        The password alone (first factor right, no code) answers with a challenge when the policy allows it.
        """
        row = self.store.user(user)
        tokens = self._otp_tokens(row)
        if first_factor == "none":
            if row is None:
                return self._finish(user, None, door, client, now, Verdict.REJECT, Reason.UNKNOWN_USER)
            return self._check_code(row.name, password.decode("ascii", "replace"), door=door, client=client, now=now)

        check = self._first_factor(first_factor)
        digit_lengths = sorted({t.digits for t in tokens}, reverse=True) if row else list(_PHANTOM_DIGITS)
        for digits in digit_lengths:
            if len(password) <= digits:
                continue
            password_part, code_part = password[:-digits], password[-digits:]
            if not (code_part.isascii() and code_part.isdigit()):
                continue
            verdict = check(row, password_part)
            if verdict is None:
                return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.FIRST_FACTOR_UNAVAILABLE)
            if verdict and row is not None:
                return self._check_code(row.name, code_part.decode(), door=door, client=client, now=now)

        verdict = check(row, password)
        if verdict is None:
            return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.FIRST_FACTOR_UNAVAILABLE)
        if not verdict or row is None:
            reason = Reason.UNKNOWN_USER if row is None else Reason.WRONG_PASSWORD
            return self._finish(user, row, door, client, now, Verdict.REJECT, reason)
        return self._password_only(row, tokens, door=door, client=client, now=now)

    def verify_code(self, user: str, code: str, *, door: str, client: str, now: float) -> Decision:
        """The code alone (the password was checked elsewhere, e.g. by pam_unix, or there is none)."""
        return self._check_code(user, code, door=door, client=client, now=now)

    def answer_challenge(self, state: bytes, user: str, code: bytes, *, door: str, client: str, now: float
                         ) -> Decision:
        """Second leg: the State from our Access-Challenge and the code alone."""
        with self.store.transaction():
            challenge = self.store.take_challenge(state)
            row = self.store.user_by_id(challenge.user_id) if challenge else None
            if challenge is None or row is None or row.name != user or challenge.client != client:
                return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.BAD_STATE)
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
            row = self.store.user(user)  # re-read under the write lock: this is the state we decide on
            if row is None:
                return self._finish(user, None, door, client, now, Verdict.REJECT, Reason.UNKNOWN_USER)
            failures = pol.FailureState(row.failures, row.last_bad, row.locked_at)
            if pol.is_locked(failures, self.policy, now):
                return self._finish(user, row, door, client, now, Verdict.LOCKED, Reason.LOCKED)
            tokens = self._otp_tokens(row)
            if not tokens:
                return self._finish(user, row, door, client, now, Verdict.REJECT, Reason.NO_TOKEN)
            result = pol.check_code(tokens, code, self.policy, now)
            if result.ok and self._advance(result):
                if failures != pol.CLEAR:
                    self.store.set_failure_state(row.id, failures=0, last_bad=None, locked_at=None)
                return self._finish(user, row, door, client, now, Verdict.ACCEPT, Reason.OK, result.token_id)
            reason = result.reason if not result.ok else Reason.REPLAY
            fingerprint = self.sealer.fingerprint(b"code", str(row.id).encode(), code.encode())
            new = pol.record_failure(failures, fingerprint, self.policy, now)
            if new != failures:
                self.store.set_failure_state(row.id, failures=new.failures, last_bad=new.last_bad,
                                             locked_at=new.locked_at)
            return self._finish(user, row, door, client, now, Verdict.REJECT, reason, result.token_id)

    def _password_only(self, row: UserRow, tokens: Sequence[pol.OtpToken], *, door: str, client: str, now: float
                       ) -> Decision:
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

    def _advance(self, result: pol.CodeCheck) -> bool:
        assert result.token_id is not None
        if result.kind == "hotp":
            return self.store.advance_hotp(result.token_id, expected=result.expected, new_counter=result.new_value)
        return self.store.advance_totp(result.token_id, expected=result.expected, new_step=result.new_value,
                                       drift=result.drift)

    def _finish(self, user: str, row: UserRow | None, door: str, client: str, now: float, verdict: Verdict,
                reason: Reason, token_id: int | None = None) -> Decision:
        with self.store.transaction():
            self.store.audit(now=now, user=user, door=door, client=client, result=verdict.value, reason=reason.value)
        message = {Verdict.ACCEPT: WELCOME_MESSAGE, Verdict.CHALLENGE: CHALLENGE_MESSAGE}.get(verdict, REJECT_MESSAGE)
        return Decision(verdict, reason, user, token_id=token_id, message=message)

    # -- helpers ------------------------------------------------------------------------------------------------------

    def _otp_tokens(self, row: UserRow | None) -> list[pol.OtpToken]:
        if row is None:
            return []
        return [self._unseal(t) for t in self.store.tokens(row.id, active_only=True) if t.type in pol.OTP_TYPES]

    def _unseal(self, t: TokenRow) -> pol.OtpToken:
        assert t.secret is not None
        secret = self.sealer.open(t.secret, token_identity(t.id))
        return pol.OtpToken(t.id, t.type, secret, t.algorithm, t.digits, t.period, t.t0, t.counter, t.last_step,
                            t.drift, t.window)

    def _first_factor(self, mode: str) -> Callable[[UserRow | None, bytes], bool | None]:
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
