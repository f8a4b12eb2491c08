"""Provisioning: the operations behind `otp-admin` (and `otp-radiusd --demo`), as a library.

Every operation validates its input before touching the store and runs in one transaction, so a refused operation
writes nothing.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from . import oob
from .config import Config
from .errors import ConfigError, InputError, NotFoundError, OtpError, SealError, StoreError
from .oath import encode_base32
from .passwords import hash_password, validate_reversible
from .policy import CLEAR
from .reseal import reseal_legacy_tokens, row_identity
from .seal import Sealer, create_key_file, load_key_file, password_identity
from .specs import OTP_TOKEN_TYPES, TokenSpec, UserSpec, validate_user_name
from .store import Store, TokenRow, UserRow, open_store, store_present
from .uri import otpauth_uri

if TYPE_CHECKING:
    from .firstfactor.ldap import Directory, Entry

# TokenSpec, UserSpec and validate_user_name live in otpcore.specs (the importers need them without a store); they
# are named here too, as the arguments of Admin's methods.
__all__ = ["Admin", "ImportResult", "NewToken", "TokenSpec", "UserSpec", "validate_user_name"]


class ImportResult(NamedTuple):
    added: int
    replaced: int  # existing tokens given the imported settings (--replace), their counters kept


@dataclass(frozen=True)
class NewToken:
    id: int
    user: str
    type: str
    secret_b32: str
    uri: str


class Admin:
    """Opens the store and the key of one configuration. Use as a context manager."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._store: Store | None = None
        self._sealer: Sealer | None = None
        self._directory: Directory | None = None

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._directory is not None:
            self._directory.close()
            self._directory = None
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self) -> Store:
        if self._store is None:
            sealer = self.sealer  # a store without its key is a broken installation: say so before anything else
            self._store = open_store(self.config.store)
            reseal_legacy_tokens(self._store, sealer)
        return self._store

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            self._sealer = load_key_file(self.config.store.key_file)
        return self._sealer

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            if self.config.ldap is None:
                raise ConfigError("directory users need an [ldap] table in the config")
            from .firstfactor.ldap import Directory

            self._directory = Directory(self.config.ldap)
        return self._directory

    # -- set-up -------------------------------------------------------------------------------------------------------

    def init(self) -> list[str]:
        """Create the key and the store if missing, migrate the schema. Idempotent. Returns what was created."""
        created = []
        key_file, where = self.config.store.key_file, self.config.store.where
        existed = store_present(self.config.store)
        if existed and not key_file.exists():
            raise SealError(f"key file not found: {key_file}, but the store {where} exists: restore its key "
                            "(a new key would not open the secrets sealed in it)")
        new_key = create_key_file(key_file)
        if new_key:
            created.append(f"key file {key_file}")
        try:
            self._sealer = load_key_file(key_file)  # also checks an existing key's mode
            self._store = open_store(self.config.store, create=True)
            reseal_legacy_tokens(self._store, self._sealer)
        except OtpError:
            if new_key:  # a failed init leaves no key behind that no store uses
                key_file.unlink(missing_ok=True)
            raise
        if not existed:
            created.append(f"store {where}")
        return created

    # -- users --------------------------------------------------------------------------------------------------------

    def add_user(self, spec: UserSpec, *, now: float) -> int:
        validate_user_name(spec.name)
        password_hash = hash_password(spec.password) if spec.password else None
        with self.store.transaction():
            user_id = self.store.add_user(spec.name, email=spec.email, phone=spec.phone, password_hash=password_hash,
                                          now=now)
            self._audit(spec.name, "user_added", now)
        return user_id

    def users(self) -> list[UserRow]:
        return self.store.users()

    def user(self, name: str) -> UserRow:
        return self.store.require_user(name)

    def delete_user(self, name: str, *, now: float) -> None:
        with self.store.transaction():
            self.store.delete_user(self.store.require_user(name).id)
            self.store.delete_invite(name)  # an enrolment code must not outlive its user (nor serve a namesake)
            self._audit(name, "user_deleted", now)

    def unlock_user(self, name: str, *, now: float) -> None:
        with self.store.transaction():
            row = self.store.require_user(name)
            self.store.set_failure_state(row.id, CLEAR)
            self._audit(name, "unlocked", now)

    def set_contact(self, name: str, *, email: str | None = None, phone: str | None = None,
                    clear_email: bool = False, clear_phone: bool = False, now: float) -> UserRow:
        """Change a user's e-mail address and/or phone number (None: keep it). An address an email/sms token of the
        user sends its codes to is not cleared: delete the token first. Returns the user as it is now."""
        with self.store.transaction():
            row = self.store.require_user(name)
            if row.directory:
                raise InputError(f"{name} is a directory user: the e-mail address and phone number are the "
                                 "directory's (ldap.email_attribute, ldap.phone_attribute)")
            for cleared, channel in ((clear_email, "email"), (clear_phone, "sms")):
                held = [t.id for t in self.store.tokens(row.id) if t.type == channel] if cleared else []
                if held:
                    raise StoreError(f"{name}'s {channel} token {held[0]} sends its codes there: delete it first "
                                     f"(otp-admin token delete {held[0]})")
            new_email = None if clear_email else email if email is not None else row.email
            new_phone = None if clear_phone else phone if phone is not None else row.phone
            self.store.set_user_contact(row.id, email=new_email, phone=new_phone)
            self._audit(name, "contact_set", now)
        return row._replace(email=new_email, phone=new_phone)

    def set_password(self, name: str, password: bytes | None, *, now: float, reversible: bool = False) -> None:
        """The first-factor password (its argon2 hash). With `reversible`, the password itself is kept too, sealed to
        the user, for challenge-response logins (MS-CHAPv2, CHAP); without, any such copy is removed."""
        if reversible:
            validate_reversible(password or b"")
        password_hash = hash_password(password) if password else None
        with self.store.transaction():
            row = self.store.require_user(name)
            self.store.set_password_hash(row.id, password_hash)
            sealed = None
            if reversible and password:
                sealed = self.sealer.seal(password, password_identity(row.id, row.name))
            self.store.set_reversible_password(row.id, sealed)
            self._audit(name, "password_set_reversible" if reversible else "password_set", now)

    def has_reversible_password(self, name: str) -> bool:
        return self.store.reversible_password(self.store.require_user(name).id) is not None

    # -- tokens -------------------------------------------------------------------------------------------------------

    def add_token(self, user: str, spec: TokenSpec, *, now: float) -> NewToken:
        """A user the store does not have but the directory does is added to the store first, as a directory user."""
        spec = spec.validated()
        entry = self._directory_entry(user, spec)  # the network before the write lock
        with self.store.transaction():
            row = self.store.user(user)
            if row is None:
                if entry is None:
                    where = " (neither in the store nor in the directory)" if self.config.ldap else ""
                    raise NotFoundError(f"no such user: {user}{where}")
                self.store.add_user(user, email=None, phone=None, password_hash=None, now=now, directory=True)
                row = self.store.require_user(user)
                self._audit(user, "directory_user_added", now)
            new = self._insert_token(row, spec, now, entry)
            self._audit(user, "token_added", now)
        return new

    def contacts(self, name: str) -> tuple[str | None, str | None]:
        """The user's e-mail address and phone number: the directory's for a directory user."""
        row = self.store.require_user(name)
        if not row.directory:
            return row.email, row.phone
        entry = self.directory.find(name)
        return (entry.email, entry.phone) if entry is not None else (None, None)

    def _directory_entry(self, user: str, spec: TokenSpec) -> Entry | None:
        """The directory's entry of a user that token add needs it for: one the store does not have (to add it), or
        a directory user given an email/sms token (the address must be there)."""
        row = self.store.user(user)
        if self.config.ldap is None or (row is not None and not (row.directory and spec.type in oob.CHANNELS)):
            return None
        validate_user_name(user)
        return self.directory.find(user)

    def tokens(self, user: str | None = None) -> list[tuple[TokenRow, str]]:
        """Tokens with their owner's name."""
        names = {u.id: u.name for u in self.store.users()}
        user_id = self.store.require_user(user).id if user is not None else None
        return [(t, names.get(t.user_id, "?")) for t in self.store.tokens(user_id)]

    def token_uri(self, token_id: int) -> str:
        """The otpauth:// URI of an existing TOTP/HOTP token (to show its QR code again)."""
        token = self.store.require_token(token_id)
        if token.type not in OTP_TOKEN_TYPES or token.secret is None:
            raise InputError(f"token {token_id} is not a totp/hotp token")
        secret = self._open_secret(token)
        return otpauth_uri(kind=token.type, account=self._owner(token), secret=secret, issuer=token.issuer,
                           algorithm=token.algorithm, digits=token.digits, period=token.period,
                           counter=token.counter)

    def set_token_active(self, token_id: int, active: bool, *, now: float) -> None:
        with self.store.transaction():
            token = self.store.require_token(token_id)
            self.store.set_token_active(token_id, active)
            self._audit(self._owner(token), "token_enabled" if active else "token_disabled", now)

    def delete_token(self, token_id: int, *, now: float) -> None:
        with self.store.transaction():
            token = self.store.require_token(token_id)
            self.store.delete_token(token_id)
            self._audit(self._owner(token), "token_deleted", now)

    def import_users(self, records: Sequence[tuple[UserSpec, TokenSpec]], *, now: float, replace: bool = False
                     ) -> ImportResult:
        """All or nothing: users are created when new (else their token is added).

        A token whose secret its user already holds is refused: a second token with a fresh counter would accept
        codes already used. With `replace`, the held token takes the imported settings instead and keeps its
        counter / last step and drift (or the imported ones, if further on), so no used code opens again."""
        prepared = [(u, t.validated(), hash_password(u.password) if u.password else None) for u, t in records]
        for user, _, _ in prepared:
            validate_user_name(user.name)
        _refuse_repeated_secrets([(u.name, t) for u, t, _ in prepared])
        added = replaced = 0
        with self.store.transaction():
            for number, (user, token, password_hash) in enumerate(prepared, start=1):
                row = self.store.user(user.name)
                if row is None:
                    self.store.add_user(user.name, email=user.email, phone=user.phone, password_hash=password_hash,
                                        now=now)
                    row = self.store.require_user(user.name)
                else:
                    self.store.update_user_contact(row.id, email=user.email, phone=user.phone)
                    if password_hash:
                        self.store.set_password_hash(row.id, password_hash)
                        self.store.set_reversible_password(row.id, None)  # it was the old password's
                held = self._tokens_holding(row.id, token.secret)
                if not held:
                    self._insert_token(row, token, now)
                    added += 1
                elif replace:
                    for old in held:
                        self._replace_token(old, token)
                    replaced += len(held)
                else:
                    raise StoreError(f"{token.source or f'record {number}'}: {user.name} already holds this secret "
                                     f"(token {held[0].id}); nothing imported (--replace updates that token, keeping "
                                     "its counter)")
            extra = f"_replaced_{replaced}" if replaced else ""
            self.store.audit(now=now, user=None, door="admin", client="otp-admin", result="ok",
                             reason=f"imported_{added}_tokens{extra}")
        return ImportResult(added, replaced)

    # -- helpers ------------------------------------------------------------------------------------------------------

    def _insert_token(self, row: UserRow, spec: TokenSpec, now: float, entry: Entry | None = None) -> NewToken:
        if spec.type in oob.CHANNELS:
            return self._insert_oob_token(row, spec, now, entry)
        secret = spec.secret if spec.secret is not None else os.urandom(20)
        fields = {
            "type": spec.type, "algorithm": spec.algorithm, "digits": spec.digits, "period": spec.period,
            "t0": spec.t0, "counter": spec.counter, "last_step": spec.last_step, "drift": 0, "window": spec.window,
            "issuer": spec.issuer, "active": 1,
        }
        token_id = self.store.add_token(row.id, fields, now)
        # The sealed secret is bound to the row, known only after the insert (same transaction).
        self._seal_secret(self.store.require_token(token_id), secret)
        uri = otpauth_uri(kind=spec.type, account=row.name, secret=secret, issuer=spec.issuer,
                          algorithm=spec.algorithm, digits=spec.digits, period=spec.period, counter=spec.counter)
        return NewToken(token_id, row.name, spec.type, encode_base32(secret), uri)

    def _replace_token(self, old: TokenRow, spec: TokenSpec) -> None:
        """`old` takes the settings of `spec` (same secret); its counter and last step never move back."""
        assert spec.secret is not None
        fields = {"type": spec.type, "algorithm": spec.algorithm, "digits": spec.digits, "period": spec.period,
                  "t0": spec.t0, "counter": max(old.counter, spec.counter),
                  "last_step": max(old.last_step, spec.last_step), "window": spec.window,
                  "issuer": spec.issuer if spec.issuer is not None else old.issuer}
        self.store.update_token(old.id, fields)
        self._seal_secret(self.store.require_token(old.id), spec.secret)  # sealed again for the row as it is now

    def _tokens_holding(self, user_id: int, secret: bytes | None) -> list[TokenRow]:
        """The user's TOTP/HOTP tokens (active or not) whose secret is `secret`."""
        if secret is None:  # an email/sms token
            return []
        return [t for t in self.store.tokens(user_id) if t.type in OTP_TOKEN_TYPES and t.secret is not None
                and hmac.compare_digest(self._open_secret(t), secret)]

    # The two places where a secret meets its row: sealing binds it to the row, opening checks that binding.

    def _seal_secret(self, token: TokenRow, secret: bytes) -> None:
        self.store.set_token_secret(token.id, self.sealer.seal(secret, row_identity(token)))

    def _open_secret(self, token: TokenRow) -> bytes:
        if token.secret is None:
            raise StoreError(f"token {token.id} has no secret")
        return self.sealer.open(token.secret, row_identity(token))

    def _insert_oob_token(self, row: UserRow, spec: TokenSpec, now: float, entry: Entry | None) -> NewToken:
        """An email or sms token: no secret, the code is made and sent at each login, to the profile's address (the
        directory's, for a directory user)."""
        email = spec.type == "email"
        if row.directory:
            address = (entry.email if email else entry.phone) if entry is not None else None
            attribute = "ldap.email_attribute" if email else "ldap.phone_attribute"
            missing = f"the directory has no {attribute} of {row.name}"
        else:
            current = self.store.user_by_id(row.id) or row  # an import may have just set the address
            address = current.email if email else current.phone
            missing = f"user {row.name} has no " + (
                "e-mail address (user add --email)" if email else "phone number (user add --phone)")
        if not address:
            raise InputError(f"{missing} for an {spec.type} token")
        fields = {"type": spec.type, "digits": spec.digits, "active": 1, "issuer": spec.issuer,
                  "options": oob.dump_options(spec.options)}
        token_id = self.store.add_token(row.id, fields, now)
        return NewToken(token_id, row.name, spec.type, "", "")

    def _owner(self, token: TokenRow) -> str:
        owner = self.store.user_by_id(token.user_id)
        if owner is None:
            raise StoreError(f"token {token.id} has no owner")
        return owner.name

    def _audit(self, user: str | None, reason: str, now: float) -> None:
        self.store.audit(now=now, user=user, door="admin", client="otp-admin", result="ok", reason=reason)


def _refuse_repeated_secrets(records: Sequence[tuple[str, TokenSpec]]) -> None:
    """One file giving a user the same secret twice would make two tokens with counters of their own."""
    seen: dict[str, list[tuple[bytes, str]]] = {}
    for number, (user, token) in enumerate(records, start=1):
        if token.secret is None:
            continue
        where = token.source or f"record {number}"
        for secret, first in seen.get(user, []):
            if hmac.compare_digest(secret, token.secret):
                raise StoreError(f"{where}: {user} is given the same secret as in {first}; nothing imported")
        seen.setdefault(user, []).append((token.secret, where))
