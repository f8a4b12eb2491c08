"""The store as the core and the doors see it, whatever the engine behind it.

Every method raises StoreError when the database cannot be read or written (and NotFoundError from the require_*
methods); no engine's own exception gets out. Writes made inside `transaction()` become durable together at its end.
Optional capabilities of one engine are protocols of their own (`Checkpointing`), tested with isinstance.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from ..policy import FailureState, ThrottleState
from .rows import (
    AuditRow,
    ChallengeRow,
    InviteRow,
    NasClosed,
    PortalSessionRow,
    ReplyGroupRow,
    SessionEvent,
    SessionRow,
    SessionWrite,
    TokenRow,
    UserRow,
)

__all__ = ["Checkpointing", "Replaceable", "Store", "WriterTurn"]


class Store(Protocol):
    """One connection to the store. Not thread-safe: one per thread or process."""

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Read, decide and write cannot interleave with another process's (or server's): SQLite holds the whole
        store's write lock from the start, PostgreSQL locks each user the transaction reads (and, through it, the
        user's tokens, failure state and challenges) until the end. Nested blocks join the outermost one, whose end
        commits them all (or rolls them all back)."""
        ...

    # -- users --------------------------------------------------------------------------------------------------------

    def user(self, name: str) -> UserRow | None: ...

    def user_by_id(self, user_id: int) -> UserRow | None: ...

    def require_user(self, name: str) -> UserRow: ...

    def users(self) -> list[UserRow]: ...

    def user_with_tokens(self, name: str) -> tuple[UserRow | None, list[TokenRow]]:
        """The user and its active tokens (oldest first): a verification's first read."""
        ...

    def users_with_tokens(self, names: Sequence[str]) -> dict[str, tuple[UserRow | None, list[TokenRow]]]: ...

    def prefetch(self, names: Sequence[str]) -> None:
        """Inside a transaction: read these users now, together; each one's next user_with_tokens() takes it from
        there, unless its rows were written meanwhile."""
        ...

    def add_user(self, name: str, *, email: str | None, phone: str | None, password_hash: str | None, now: float,
                 directory: bool = False) -> int:
        """`directory`: a user of the directory ([ldap]), whose addresses are read there (UserRow.directory)."""
        ...

    def update_user_contact(self, user_id: int, *, email: str | None, phone: str | None) -> None: ...

    def set_user_contact(self, user_id: int, *, email: str | None, phone: str | None) -> None: ...

    def set_password_hash(self, user_id: int, password_hash: str | None) -> None: ...

    def delete_user(self, user_id: int) -> None: ...

    def set_failure_state(self, user_id: int, state: FailureState) -> None: ...

    def set_oob_sends(self, user_id: int, sends: str | None) -> None: ...

    def set_user_reply(self, user_id: int, *, group: str | None, attributes: str | None) -> None:
        """The user's reply group (None: none) and own reply attributes (JSON, otpcore.replies; None: none)."""
        ...

    # -- reply groups (what an Accept of their members grants) --------------------------------------------------------

    def reply_group(self, name: str) -> ReplyGroupRow | None: ...

    def reply_groups(self) -> list[ReplyGroupRow]: ...

    def set_reply_group(self, name: str, attributes: str, now: float) -> None:
        """Make the group, or replace its attributes (JSON, otpcore.replies)."""
        ...

    def delete_reply_group(self, name: str) -> None:
        """StoreError while users are in the group (a foreign key)."""
        ...

    def reply_group_members(self, name: str) -> list[str]:
        """The names of the group's users, in order."""
        ...

    def reversible_password(self, user_id: int) -> bytes | None:
        """The user's reversible password, sealed (otpcore.seal.password_identity); None: the user has none."""
        ...

    def set_reversible_password(self, user_id: int, sealed: bytes | None) -> None:
        """Keep the sealed reversible password (None: keep none). delete_user() removes it too."""
        ...

    # -- the per-client throttle --------------------------------------------------------------------------------------

    def throttle(self, key: str) -> ThrottleState: ...

    def count_throttle_failure(self, key: str, *, now: float, rate: float) -> None:
        """One failed login more in the client's bucket, drained at `rate` per second (policy.throttle_failure), in
        one atomic write: servers counting at once lose no failure."""
        ...

    # -- failed logins of names nobody has ----------------------------------------------------------------------------

    def phantom_failures(self, key: bytes) -> FailureState: ...

    def set_phantom_failures(self, key: bytes, state: FailureState, now: float) -> None: ...

    def purge_phantoms(self, before: float) -> None: ...

    # -- tokens -------------------------------------------------------------------------------------------------------

    def token(self, token_id: int) -> TokenRow | None: ...

    def require_token(self, token_id: int) -> TokenRow: ...

    def tokens(self, user_id: int | None = None, *, active_only: bool = False) -> list[TokenRow]: ...

    def add_token(self, user_id: int, fields: dict[str, Any], now: float) -> int: ...

    def update_token(self, token_id: int, fields: dict[str, Any]) -> None: ...

    def set_token_secret(self, token_id: int, sealed: bytes) -> None: ...

    def tokens_sealed_before(self, seal: int) -> list[TokenRow]: ...

    def set_token_active(self, token_id: int, active: bool) -> None: ...

    def delete_token(self, token_id: int) -> None: ...

    def set_token_option(self, token_id: int, key: str, value: Any) -> None: ...

    def advance_hotp(self, token_id: int, *, expected: int, new_counter: int) -> bool:
        """Compare-and-set: False when somebody else moved the counter (lost the race)."""
        ...

    def advance_totp(self, token_id: int, *, expected: int, new_step: int, drift: int) -> bool:
        """Compare-and-set: False when the step is not newer or somebody else moved it."""
        ...

    # -- challenges ---------------------------------------------------------------------------------------------------

    def add_challenge(self, row: ChallengeRow) -> None: ...

    def take_challenge(self, state: bytes) -> ChallengeRow | None: ...

    def challenge(self, state: bytes) -> ChallengeRow | None: ...

    def purge_challenges(self, now: float) -> None: ...

    def code_challenges(self, user_id: int) -> list[ChallengeRow]: ...

    def set_challenge_attempts(self, state: bytes, attempts: int) -> None: ...

    def delete_challenge(self, state: bytes) -> None: ...

    # -- audit --------------------------------------------------------------------------------------------------------

    def audit(self, *, now: float, user: str | None, door: str, client: str | None, result: str, reason: str,
              source: str | None = None) -> None:
        """Inside a transaction, written at its end (audit_rows() in it does not see it yet)."""
        ...

    def audit_rows(self, *, user: str | None = None, since: float | None = None, limit: int | None = None
                   ) -> list[AuditRow]: ...

    # -- accounting sessions ------------------------------------------------------------------------------------------

    def session_start(self, event: SessionEvent) -> SessionWrite: ...

    def session_update(self, event: SessionEvent) -> SessionWrite: ...

    def session_stop(self, event: SessionEvent) -> SessionWrite: ...

    def close_nas_sessions(self, client: str, nas_address: str | None, nas_identifier: str | None, *, now: float,
                           cause: str = "NAS-Reboot") -> NasClosed: ...

    def sessions(self, *, active_only: bool = False, user: str | None = None) -> list[SessionRow]: ...

    # -- the self-service portal (otp-web) ----------------------------------------------------------------------------

    def portal_session(self, key: bytes) -> PortalSessionRow | None: ...

    def put_portal_session(self, row: PortalSessionRow) -> None: ...

    def delete_portal_session(self, key: bytes) -> None: ...

    def purge_portal_sessions(self, now: float) -> None: ...

    def invite(self, user: str) -> InviteRow | None: ...

    def put_invite(self, row: InviteRow) -> None: ...

    def delete_invite(self, user: str) -> bool:
        """True when the user had an invite (now gone: single use)."""
        ...

    def purge_invites(self, now: float) -> None: ...


@runtime_checkable
class Checkpointing(Protocol):
    """A store whose write-ahead log is copied into the database by checkpoints (SQLite). A server may leave those to
    a background connection: set_wal_autocheckpoint(0) on the connections that answer requests, and checkpoint()
    from another one now and then."""

    def set_wal_autocheckpoint(self, pages: int) -> None:
        """Checkpoint at the commit that makes the log reach `pages` pages; 0: never on this connection."""
        ...

    def checkpoint(self) -> tuple[int, int]:
        """A checkpoint that waits for nobody and blocks nobody: (pages in the log, pages copied so far)."""
        ...


@runtime_checkable
class Replaceable(Protocol):
    """A store in a file that can be deleted or replaced (restored from a backup) under an open connection (SQLite),
    which would then go on with the old file's content unseen by every other process."""

    def replaced(self) -> bool:
        """Whether the store's path no longer names the file this connection opened."""
        ...


class WriterTurn(Protocol):
    """How the workers of one server take turns at the store's write lock, so that a worker waiting for it is woken
    the moment the other is done. Entered around a group's transaction; `try_take` takes the turn if nobody has it
    (the next `with` then keeps it) and says whether it did."""

    @property
    def idle(self) -> bool:
        """No other worker to take turns with."""
        ...

    def try_take(self) -> bool: ...

    def __enter__(self) -> None: ...

    def __exit__(self, *exc: object) -> None: ...

    def close(self) -> None: ...
