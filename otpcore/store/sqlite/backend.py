"""The SQLite backend: one file, shared by a PAM login, otp-admin and several otp-radiusd workers.

WAL mode with a busy timeout; a transaction is `BEGIN IMMEDIATE`, so it holds the whole database's write lock from its
start. The file is created with mode 0600. Every sqlite3 error becomes a StoreError here, including those of COMMIT,
of reading a query's rows and of closing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from ...errors import StoreError
from ..audit import Audit, AuditSql
from ..challenges import Challenges, ChallengeSql
from ..dialect import SQLITE
from ..phantoms import Phantoms, PhantomSql
from ..portal import Portal, PortalSql
from ..replygroups import ReplyGroups, ReplyGroupSql
from ..reversible import ReversiblePasswords, ReversibleSql
from ..rows import SCHEMA_VERSION
from ..sessions import Sessions, SessionSql
from ..sqlcore import Params
from ..throttle import Throttle, ThrottleSql
from ..tokens import Tokens, TokenSql
from ..users import Users, UserSql

__all__ = ["BUSY_TIMEOUT_MS", "SqliteStore"]

BUSY_TIMEOUT_MS = 10_000


class SqliteStore(Users, Tokens, Challenges, Audit, Sessions, Throttle, Phantoms, ReplyGroups, ReversiblePasswords,
                  Portal):
    """A Store (otpcore.store.interface) on one SQLite connection; also Checkpointing and Replaceable."""

    dialect = SQLITE
    _engine_errors = (sqlite3.Error,)
    _user_sql = UserSql(SQLITE)
    _token_sql = TokenSql(SQLITE)
    _challenge_sql = ChallengeSql(SQLITE)
    _audit_sql = AuditSql(SQLITE)
    _session_sql = SessionSql(SQLITE)
    _throttle_sql = ThrottleSql(SQLITE)
    _phantom_sql = PhantomSql(SQLITE)
    _reply_group_sql = ReplyGroupSql(SQLITE)
    _reversible_sql = ReversibleSql(SQLITE)
    _portal_sql = PortalSql(SQLITE)

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        super().__init__()
        self._conn = conn
        self.path = path
        self._identity: tuple[int, int] | None = None  # the file opened (device, inode)

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> SqliteStore:
        """Open the store; with `create`, make the file (0600) and bring the schema up to date."""
        path = Path(path)
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError as exc:
                raise StoreError(f"cannot create store {path}: {exc.strerror}") from None
        elif not path.exists():
            raise StoreError(f"store not found: {path} (run `otp-admin init`)")
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        store = cls(conn, path)
        try:
            version = store._configure()
            store._identity = _identity(path)
            if store._identity is None:
                raise StoreError(f"store not found: {path}")
            if version == 0 and not create:
                raise StoreError(f"store {path} is not initialised (run `otp-admin init`)")
            if version > SCHEMA_VERSION:
                raise StoreError(f"store {path} has schema {version}, newer than this program ({SCHEMA_VERSION})")
            if version < SCHEMA_VERSION:
                store._migrate()
        except sqlite3.Error as exc:  # of sqlite-utils, outside our primitives
            store.close_quietly()
            raise StoreError(f"cannot migrate store {path}: {exc}") from None
        except BaseException:
            store.close_quietly()
            raise
        return store

    def _configure(self) -> int:
        """The connection's settings; returns the schema version."""
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across process crashes in WAL mode; only a power loss can drop the last commits.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None

    def _migrate(self) -> None:
        import sqlite_utils  # only when the schema is behind: keeps logins free of its import cost

        from .schema import MIGRATIONS

        db = sqlite_utils.Database(self._conn)
        with self.transaction():
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            for target, step in MIGRATIONS:
                if version < target:
                    step(db)
                    self._conn.execute(f"PRAGMA user_version = {target}")
                    version = target

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"store error: {exc}") from None

    def close_quietly(self) -> None:
        """Close, whatever state the connection is in (while another error is being reported)."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def replaced(self) -> bool:
        """Whether the path no longer names the file opened (Replaceable): deleted, or replaced by another."""
        return _identity(self.path) != self._identity

    # -- write-ahead log (Checkpointing) ------------------------------------------------------------------------------
    # By default the commit that makes the WAL reach 1000 pages copies them into the database, with two fsyncs, while
    # its caller waits. A server can leave that to a background thread: set_wal_autocheckpoint(0) on the connections
    # that answer requests, and checkpoint() from another connection now and then.

    def set_wal_autocheckpoint(self, pages: int) -> None:
        """Checkpoint at the commit that makes the WAL reach `pages` pages; 0: never on this connection."""
        self._one(f"PRAGMA wal_autocheckpoint = {int(pages)}")

    def checkpoint(self) -> tuple[int, int]:
        """A PASSIVE checkpoint (waits for nobody, blocks nobody): (pages in the WAL, pages copied so far)."""
        row = self._one("PRAGMA wal_checkpoint(PASSIVE)")
        assert row is not None
        return int(row[1]), int(row[2])

    # -- the primitives of SqlStore -----------------------------------------------------------------------------------

    def _one(self, sql: str, params: Params = ()) -> Params | None:
        try:
            row: Params | None = self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise _store_error(exc) from None
        return row

    def _all(self, sql: str, params: Params = ()) -> list[Params]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _store_error(exc) from None

    def _run(self, sql: str, params: Params = ()) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise _store_error(exc) from None

    def _many(self, sql: str, rows: Sequence[Params]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StoreError(f"store write failed: {exc}") from None

    def _begin(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")  # the write lock up front: read-decide-write cannot interleave
        except sqlite3.Error as exc:
            raise StoreError(f"store is busy or unwritable: {exc}") from None

    def _commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"store write failed: {exc}") from None

    def _rollback(self) -> None:
        """ROLLBACK if a transaction is still open: after a full disk or an I/O error SQLite may have rolled back
        already, and a failing ROLLBACK must not replace the error being reported."""
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _store_error(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreError(f"refused by the store: {exc}")
    return StoreError(f"store error: {exc}")
