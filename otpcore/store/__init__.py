"""The store: the only package that touches a database.

The core and the doors use the `Store` interface (`interface`) and the row types (`rows`), and get a store from
`open_store`. One module per aggregate (`users`, `tokens`, `challenges`, `audit`, `sessions`, `throttle`, `portal`)
holds its SQL, written once for every engine (`dialect` has the few fragments that differ); `sqlcore` has the
transaction and the state a group commit keeps in it; `sessionrules` the pure rules of accounting. One subpackage per
engine: `sqlite` (the default). Every database error leaves as otpcore.errors.StoreError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .interface import Checkpointing, Store, WriterTurn
from .rows import (
    SCHEMA_VERSION,
    AuditRow,
    ChallengeRow,
    InviteRow,
    NasClosed,
    PortalSessionRow,
    SessionEvent,
    SessionRow,
    SessionWrite,
    TokenRow,
    UserRow,
)

if TYPE_CHECKING:
    from ..config import StoreConfig

__all__ = ["SCHEMA_VERSION", "AuditRow", "ChallengeRow", "Checkpointing", "InviteRow", "NasClosed", "PortalSessionRow",
           "SessionEvent", "SessionRow", "SessionWrite", "Store", "TokenRow", "UserRow", "WriterTurn", "open_store",
           "writer_turn"]


def open_store(config: StoreConfig, *, create: bool = False) -> Store:
    """The store the configuration names (today always SQLite, at `path`). With `create`, make it if missing and
    bring its schema up to date (otp-admin init); without, a missing or uninitialised store is a StoreError."""
    from .sqlite import SqliteStore

    return SqliteStore.open(config.path, create=create)


def writer_turn(config: StoreConfig, *, shared: bool) -> WriterTurn:
    """The turns the workers of one server take at the store's write lock (`shared`: there are several)."""
    from .sqlite.turn import FlockTurn

    return FlockTurn(config.path, shared=shared)
