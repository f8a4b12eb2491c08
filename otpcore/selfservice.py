"""What users do for themselves in the portal (otp-web), as a library: enrol a token by proving its first code, disable
a lost one, change an e-mail address or phone number once confirmed, and the one-time enrolment codes an admin issues
(`otp-admin user invite`). Every change runs in one transaction with its audit row (door "web", or "admin" for
invites issued at a terminal).

A token being enrolled exists only as a secret the portal keeps sealed in its session: it becomes a token row, active,
only in the transaction that accepts its first code, whose time step (or counter) it records as used, so that code can
never be accepted again. An abandoned enrolment leaves nothing behind.
"""

from __future__ import annotations

import hmac
import os
import secrets
from typing import NamedTuple

from . import oob
from . import policy as pol
from .errors import InputError, NotFoundError
from .reseal import row_identity
from .seal import Sealer
from .specs import OTP_TOKEN_TYPES, validate_user_name
from .store import InviteRow, Store, TokenRow, UserRow

__all__ = ["INVITE_ALPHABET", "Enrolled", "SelfService", "normalize_invite"]

INVITE_ALPHABET = oob.ALPHABETS["alphanumeric"]  # no look-alikes: read from a mail, typed by hand
_INVITE_LENGTH = 10  # 31^10: about 2^49 codes, tried at most policy.max_failures times before a lockout


class Enrolled(NamedTuple):
    token_id: int
    step: int  # the time step (TOTP) or counter (HOTP) the first code was accepted at


def normalize_invite(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


class SelfService:
    def __init__(self, store: Store, sealer: Sealer, policy: pol.Policy) -> None:
        self.store = store
        self.sealer = sealer
        self.policy = policy

    # -- enrolment ----------------------------------------------------------------------------------------------------

    @staticmethod
    def new_secret() -> bytes:
        return os.urandom(20)  # 160 bits, as RFC 4226 recommends

    def enrol(self, user: str, kind: str, secret: bytes, code: str, *, issuer: str | None, first: bool,
              directory_user: bool, now: float, client: str, source: str | None = None) -> Enrolled | None:
        """Make `secret` an active token of `user` if `code` is its code now (TOTP) or one of its next (HOTP); None
        when it is not. `first`: only if the user has no active token (the enrolment after the first factor alone).
        `directory_user`: a user of the directory the store may not know yet (added to it, as `token add` does)."""
        if kind not in OTP_TOKEN_TYPES:
            raise InputError(f"cannot enrol a {kind} token with a secret")
        candidate = pol.OtpToken(TokenRow.unsaved(kind), secret)
        result = pol.check_code([candidate], "".join(code.split()), self.policy, now)
        with self.store.transaction():
            row = self.store.user(user) or self._directory_row(user, directory_user, now)
            if first and self.store.tokens(row.id, active_only=True):
                self._audit(user, "error", "enrol_refused_has_token", now, client, source)
                return None
            if not result.ok:
                self._audit(user, "reject", "enrol_wrong_code", now, client, source)
                return None
            fields = {"type": kind, "algorithm": "SHA1", "digits": 6, "period": 30, "t0": 0, "drift": result.drift,
                      "counter": result.new_value if kind == "hotp" else 0, "issuer": issuer, "active": 1,
                      "last_step": result.new_value if kind == "totp" else -1}
            token_id = self.store.add_token(row.id, fields, now)
            token = self.store.require_token(token_id)
            self.store.set_token_secret(token_id, self.sealer.seal(secret, row_identity(token)))
            self._audit(user, "ok", f"token_enrolled_{kind}", now, client, source)
        return Enrolled(token_id, result.new_value)

    def enrol_channel(self, user: str, channel: str, *, now: float, client: str, source: str | None = None) -> int:
        """An email or sms token sending its codes to the address the user has (confirmed) in the store."""
        if channel not in oob.CHANNELS:
            raise InputError(f"not a channel: {channel}")
        with self.store.transaction():
            row = self.store.require_user(user)
            if not (row.email if channel == "email" else row.phone):
                raise InputError(f"no {'e-mail address' if channel == 'email' else 'phone number'} registered")
            token_id = self.store.add_token(row.id, {"type": channel, "digits": 6, "active": 1, "options": None}, now)
            self._audit(user, "ok", f"token_enrolled_{channel}", now, client, source)
        return token_id

    def tokens(self, user: str) -> list[TokenRow]:
        row = self.store.user(user)
        return self.store.tokens(row.id) if row is not None else []

    def disable_token(self, user: str, token_id: int, *, now: float, client: str, source: str | None = None) -> None:
        """A token the user lost: disabled (the admin may enable it again). Only the user's own tokens."""
        with self.store.transaction():
            row = self.store.require_user(user)
            token = self.store.token(token_id)
            if token is None or token.user_id != row.id:
                raise NotFoundError(f"no such token: {token_id}")
            self.store.set_token_active(token_id, False)
            self._audit(user, "ok", "token_disabled", now, client, source)

    # -- contact addresses --------------------------------------------------------------------------------------------

    def set_contact(self, user: str, channel: str, address: str, *, now: float, client: str,
                    source: str | None = None) -> UserRow:
        """A new e-mail address (channel "email") or phone number ("sms"), confirmed by the caller: a code sent there
        came back."""
        with self.store.transaction():
            row = self.store.require_user(user)
            if row.directory:
                raise InputError("the directory holds this address: change it there")
            email, phone = (address, row.phone) if channel == "email" else (row.email, address)
            self.store.set_user_contact(row.id, email=email, phone=phone)
            self._audit(user, "ok", f"contact_confirmed_{channel}", now, client, source)
        return row._replace(email=email, phone=phone)

    # -- invites ------------------------------------------------------------------------------------------------------

    def issue_invite(self, user: str, *, hours: int, now: float) -> str:
        """A new one-time enrolment code for `user` (replacing any earlier one), valid `hours`; audited."""
        validate_user_name(user)
        code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(_INVITE_LENGTH))
        with self.store.transaction():
            self.store.purge_invites(now)
            self.store.put_invite(InviteRow(user, self._invite_hash(user, code), now, now + hours * 3600))
            self._audit(user, "ok", "invite_issued", now, "otp-admin", None, door="admin")
        return f"{code[:5]}-{code[5:]}"

    def redeem_invite(self, user: str, code: str, *, now: float, client: str, source: str | None = None) -> bool:
        """Whether `code` is the user's enrolment code, still valid: then it is used up. A wrong code counts toward the
        user's lockout like a wrong one-time code."""
        given = self._invite_hash(user, normalize_invite(code))
        with self.store.transaction():
            invite, row = self.store.invite(user), self.store.user(user)
            locked = row is not None and pol.is_locked(
                pol.FailureState(row.failures, row.last_bad, row.locked_at, row.lockouts), self.policy, now)
            if not locked and invite is not None and now < invite.expires and hmac.compare_digest(invite.code_hash,
                                                                                                  given):
                self.store.delete_invite(user)
                self._audit(user, "ok", "invite_used", now, client, source)
                return True
            if row is not None:
                failures = pol.FailureState(row.failures, row.last_bad, row.locked_at, row.lockouts)
                new = pol.record_failure(failures, self.sealer.fingerprint(b"invite", given), self.policy, now)
                if new != failures:
                    self.store.set_failure_state(row.id, new)
            self._audit(user, "reject", "invite_refused" if invite is None or now < invite.expires
                        else "invite_expired", now, client, source)
            return False

    def has_invite(self, user: str, now: float) -> bool:
        invite = self.store.invite(user)
        return invite is not None and now < invite.expires

    # -- helpers ------------------------------------------------------------------------------------------------------

    def _invite_hash(self, user: str, code: str) -> bytes:
        return self.sealer.fingerprint(b"invite", user.encode("utf-8", "surrogatepass"), code.encode())

    def _directory_row(self, user: str, directory_user: bool, now: float) -> UserRow:
        if not directory_user:
            raise NotFoundError(f"no such user: {user}")
        self.store.add_user(user, email=None, phone=None, password_hash=None, now=now, directory=True)
        self._audit(user, "ok", "directory_user_added", now, "otp-web", None)
        return self.store.require_user(user)

    def _audit(self, user: str, result: str, reason: str, now: float, client: str, source: str | None, *,
               door: str = "web") -> None:
        self.store.audit(now=now, user=user, door=door, client=client, result=result, reason=reason, source=source)
