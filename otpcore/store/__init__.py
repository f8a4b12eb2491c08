"""The store: the only package that touches a database.

The core and the doors use the `Store` interface (`interface`) and the row types (`rows`), and get a store from
`open_store`. One module per aggregate (`users`, `tokens`, `challenges`, `audit`, `sessions`, `throttle`,
`phantoms`, `replygroups`, `reversible`, `portal`) holds its SQL, written once for every engine (`dialect` has the few
fragments that differ); `sqlcore` has the transaction and the state a group commit keeps in it; `sessionrules` the
pure rules of accounting. One subpackage per engine: `sqlite` (the default, `[store] path`) and `postgres`
(`[store] url`: several servers, one state), each imported only when the configuration names it. Every database
error leaves as otpcore.errors.StoreError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .interface import Checkpointing, Replaceable, Store, WriterTurn
from .rows import (
    SCHEMA_VERSION,
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

if TYPE_CHECKING:
    from ..config import StoreConfig

__all__ = ["SCHEMA_VERSION", "AuditRow", "ChallengeRow", "Checkpointing", "InviteRow", "NasClosed", "PortalSessionRow",
           "Replaceable", "ReplyGroupRow", "SessionEvent", "SessionRow", "SessionWrite", "Store", "TokenRow", "UserRow",
           "WriterTurn", "open_store", "store_present", "writer_turn"]


def open_store(config: StoreConfig, *, create: bool = False) -> Store:
    """The store the configuration names: SQLite at `path`, or PostgreSQL at `url`. With `create`, make it if missing
    and bring its schema up to date (otp-admin init); without, a missing or uninitialised store is a StoreError."""
    if config.url is not None:
        from .postgres import open_postgres

        return open_postgres(config, create=create)
    from .sqlite import SqliteStore

    return SqliteStore.open(config.path, create=create)


def store_present(config: StoreConfig) -> bool:
    """Whether the store exists already (a file, or a database with a schema): `otp-admin init` never makes a new
    key for a store whose secrets another key sealed."""
    if config.url is None:
        return config.path.exists()
    from .postgres import open_postgres

    store = open_postgres(config, migrate=False)
    try:
        return store.schema_version() > 0
    finally:
        store.close()


def writer_turn(config: StoreConfig, *, shared: bool) -> WriterTurn:
    """The turns the workers of one server take at the store's write lock (`shared`: there are several). PostgreSQL
    has no such lock (rows are locked): nothing to take turns at."""
    if config.url is not None:
        return NoTurn()
    from .sqlite.turn import FlockTurn

    return FlockTurn(config.path, shared=shared)


class NoTurn:
    """A WriterTurn with nothing to take. Never `idle`: a server then decides even a single request as a group (one
    transaction with its prefetch), which on PostgreSQL is the path with the fewest round trips."""

    idle = False

    def try_take(self) -> bool:
        return True

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None
