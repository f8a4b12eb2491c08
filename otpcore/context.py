"""What every step of a verification shares: the store, the sealing key, the policy, and the few writes all of them
make the same way (an audit row with its decision, a failed login counted, a success clearing the count).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from . import oob
from . import policy as pol
from .decision import Decision, Reason, Verdict
from .errors import SealError
from .replies import granted
from .reseal import row_identity
from .seal import Sealer
from .store import Store, TokenRow, UserRow

__all__ = ["CHALLENGE_MESSAGE", "REJECT_MESSAGE", "WELCOME_MESSAGE", "VerifyContext"]

CHALLENGE_MESSAGE = "Enter your one-time password"
REJECT_MESSAGE = "Authentication failed"
WELCOME_MESSAGE = "Welcome"
_MESSAGES = {Verdict.ACCEPT: WELCOME_MESSAGE, Verdict.CHALLENGE: CHALLENGE_MESSAGE}
_OPENED_MAX = 200_000  # unsealed secrets kept per verifier (about 25 MB for 100 000 tokens)
_PHANTOM_PURGE_EVERY = 600.0  # seconds between two purges of the failure states of names nobody has
_PHANTOM_KEPT = 86_400.0  # how long such a state is kept after its lockout could last
# The doors whose clients are throttled on failed logins: not the admin at a terminal.
_THROTTLED_DOORS = frozenset({"radius", "pam", "web"})


class VerifyContext:
    def __init__(self, store: Store, sealer: Sealer, policy: pol.Policy) -> None:
        self.store = store
        self.sealer = sealer
        self.policy = policy
        # Where the request being decided came from (the RADIUS peer's address, the PAM rhost), for its audit rows:
        # set by each of the Verifier's entry points (a Verifier serves one thread, one call at a time).
        self.source: str | None = None
        self._opened: dict[tuple[object, ...], bytes] = {}  # (token identity, sealed secret) -> secret
        # Users who do not exist are checked as if they had one 6-digit TOTP token with this secret, so that they
        # cost what a real user costs.
        self.phantom = pol.OtpToken(TokenRow.unsaved("totp"), os.urandom(20))
        self._next_phantom_purge = 0.0

    # -- the end of every decision ------------------------------------------------------------------------------------

    def finish(self, user: str, door: str, client: str, now: float, verdict: Verdict, reason: Reason,
               token_id: int | None = None) -> Decision:
        # One statement: inside a transaction it is written at its end, with the others (Store.audit)
        self.store.audit(now=now, user=user, door=door, client=client, result=verdict, reason=reason,
                         source=self.source)
        return Decision(verdict, reason, user, token_id=token_id, message=_MESSAGES.get(verdict, REJECT_MESSAGE))

    def accept(self, row: UserRow, door: str, client: str, now: float, reason: Reason = Reason.OK,
               token_id: int | None = None) -> Decision:
        """An accept (audited), with the reply attributes the user is granted (otpcore.replies)."""
        decision = self.finish(row.name, door, client, now, Verdict.ACCEPT, reason, token_id)
        if row.reply_group is None and row.reply is None:
            return decision  # most users: nothing more to read
        return decision._replace(reply=granted(self.store, row))

    # -- failed logins ------------------------------------------------------------------------------------------------

    @staticmethod
    def failures(row: UserRow) -> pol.FailureState:
        return pol.FailureState(row.failures, row.last_bad, row.locked_at, row.lockouts)

    def is_locked(self, row: UserRow, now: float) -> bool:
        return pol.is_locked(self.failures(row), self.policy, now)

    def open_check(self, user: str, entry: bytes, *, door: str, client: str, now: float,
                   phantom_work: Callable[[], object]) -> Decision | tuple[UserRow, list[TokenRow]]:
        """The start of a check, inside its transaction: the client's throttle, then the user and its active tokens,
        read under the write lock (the state it decides on). A name nobody has is refused, counted and locked as a
        user is, after `phantom_work` (the work a user's check costs); a locked user is refused. Returns the
        decision when the check ends here, else what it needs to go on."""
        if self.throttled(door, client, now):
            return self.finish(user, door, client, now, Verdict.REJECT, Reason.THROTTLED)
        row, token_rows = self.store.user_with_tokens(user)
        if row is None:
            if self.phantom_locked(user, now):
                return self.finish(user, door, client, now, Verdict.LOCKED, Reason.UNKNOWN_USER)
            phantom_work()
            self.count_failure(None, entry, door, client, now, user=user)
            return self.finish(user, door, client, now, Verdict.REJECT, Reason.UNKNOWN_USER)
        if self.is_locked(row, now):
            return self.finish(user, door, client, now, Verdict.LOCKED, Reason.LOCKED)
        return row, token_rows

    def phantom_locked(self, user: str, now: float) -> bool:
        """Whether a name nobody has is locked: it is counted and locked as a user is (otpcore.store.phantoms)."""
        return pol.is_locked(self.store.phantom_failures(self._phantom_key(user)), self.policy, now)

    def count_failure(self, row: UserRow | None, entry: bytes, door: str, client: str, now: float, *,
                      user: str = "") -> bool:
        """A failed login: one more toward the user's lockout (the same entry again counts once) and toward the
        client's throttle. `entry` is what was typed (kept only as a keyed fingerprint). A name nobody has (`row`
        None, the name in `user`) is counted the same way, at the same cost. Returns True when locked now."""
        self.count_client_failure(door, client, now)
        if row is None:
            key = self._phantom_key(user)
            failures = self.store.phantom_failures(key)
            new = pol.record_failure(failures, self.sealer.fingerprint(b"login", key, entry), self.policy, now)
            if new != failures:
                self.store.set_phantom_failures(key, new, now)
                self._purge_phantoms(now)
            return pol.is_locked(new, self.policy, now)
        failures = self.failures(row)
        new = pol.record_failure(failures, self.sealer.fingerprint(b"login", b"%d" % row.id, entry), self.policy,
                                 now)
        if new != failures:
            self.store.set_failure_state(row.id, new)
        return pol.is_locked(new, self.policy, now)

    def _phantom_key(self, user: str) -> bytes:
        return self.sealer.fingerprint(b"phantom-user", user.encode("utf-8", "surrogatepass"))

    def _purge_phantoms(self, now: float) -> None:
        """Now and then, forget the names nobody has that were not tried for a day (beyond the longest lockout)."""
        if now >= self._next_phantom_purge:
            self._next_phantom_purge = now + _PHANTOM_PURGE_EVERY
            self.store.purge_phantoms(now - max(self.policy.lockout_max_seconds, self.policy.lockout_seconds)
                                      - _PHANTOM_KEPT)

    def clear_failures(self, row: UserRow) -> None:
        """A successful login: the count of failures and of lockouts in a row starts again."""
        if self.failures(row) != pol.CLEAR:
            self.store.set_failure_state(row.id, pol.CLEAR)

    def count_client_failure(self, door: str, client: str, now: float) -> None:
        if door in _THROTTLED_DOORS and self.policy.client_max_failures:
            key = f"{door}:{client}"
            self.store.count_throttle_failure(key, now=now, rate=pol.throttle_rate(self.policy))

    def throttled(self, door: str, client: str, now: float) -> bool:
        """Whether this client has caused too many failed logins lately (its requests are refused meanwhile)."""
        if door not in _THROTTLED_DOORS or not self.policy.client_max_failures:
            return False
        return pol.throttled(self.store.throttle(f"{door}:{client}"), self.policy, now)

    # -- tokens -------------------------------------------------------------------------------------------------------

    def otp_tokens(self, row: UserRow | None, rows: Sequence[TokenRow] | None = None) -> list[pol.OtpToken]:
        """The user's active TOTP/HOTP tokens, unsealed (from `rows`, the user's active tokens, when the caller has
        read them)."""
        if row is None:
            return []
        if rows is None:
            rows = self.store.tokens(row.id, active_only=True)
        return [self.unseal(t) for t in rows if t.type in pol.OTP_TYPES]

    def oob_tokens(self, row: UserRow | None, rows: Sequence[TokenRow] | None = None
                   ) -> list[tuple[TokenRow, oob.OobSettings]]:
        """The user's active email/sms tokens with the knobs in force for each, oldest first."""
        if row is None:
            return []
        if rows is None:
            rows = self.store.tokens(row.id, active_only=True)
        return [(t, oob.settings_for(self.policy, oob.load_options(t.options))) for t in rows if t.type in oob.CHANNELS]

    def unseal(self, t: TokenRow) -> pol.OtpToken:
        assert t.secret is not None
        # Secrets opened before are kept by the row's sealed value and identity: a changed secret is sealed anew (a
        # fresh nonce), and a row given another owner or other parameters is a new key, opened (and refused) afresh.
        # The mutable state (counter, last step, drift) comes from the row.
        key = (t.id, t.user_id, t.type, t.algorithm, t.digits, t.period, t.secret)
        secret = self._opened.get(key)
        if secret is None:
            if t.seal < 2:  # never opened the old way here: that binding is what let a row change owners
                raise SealError(f"token {t.id} is sealed the old way; run `otp-admin init` to re-seal it")
            try:
                secret = self.sealer.open(t.secret, row_identity(t))
            except SealError:
                raise SealError(f"token {t.id} does not open: the key file is not this store's, or the row was "
                                "changed without the key (another owner or other parameters)") from None
            if len(self._opened) >= _OPENED_MAX:
                self._opened.clear()
            self._opened[key] = secret
        return pol.OtpToken(t, secret)  # the mutable state (counter, last step, drift) is the row's

    def advance(self, result: pol.CodeCheck) -> bool:
        """Record an accepted code by compare-and-set; False when another process moved the token meanwhile."""
        assert result.token_id is not None
        if result.kind == "hotp":
            return self.store.advance_hotp(result.token_id, expected=result.expected, new_counter=result.new_value)
        return self.store.advance_totp(result.token_id, expected=result.expected, new_step=result.new_value,
                                       drift=result.drift)
