"""The PostgreSQL store: one psycopg connection, autocommit, each transaction an explicit BEGIN ... COMMIT.

There is no database-wide write lock: a transaction locks the rows it decides on before it reads them, under READ
COMMITTED. A verification locks its user `FOR UPDATE`, then reads it with its tokens (a group commit locks all of its
users in one statement, in id order, so two groups never wait for each other in a circle), so the failure count,
lockout, tokens and challenges of a user are decided by one server at a time, on what the others committed;
counters and time steps still advance by compare-and-set; a challenge's State is taken by one DELETE ... RETURNING
(of two servers, the second finds nothing); the client throttle counts in one atomic UPSERT; an accounting session's
requests are serialised on an advisory lock. How few round trips that costs: trips.py. That a COMMIT survives the
primary's death is the server's part: synchronous_commit with a synchronous standby (README, "Several servers").

Every psycopg error becomes a StoreError here, including those of COMMIT: a lost connection among them, after which
the connection is `broken` and its owner opens a new one (radiusd: the next request).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg.pq import TransactionStatus

from ...config import StoreConfig
from ...errors import StoreError
from ..audit import Audit, AuditSql
from ..challenges import Challenges, ChallengeSql
from ..dialect import POSTGRES
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
from .connect import connect, reason
from .trips import Trips

__all__ = ["PostgresStore"]


class PostgresStore(Users, Tokens, Challenges, Audit, Sessions, Throttle, Phantoms, ReplyGroups,
                    ReversiblePasswords, Portal):
    """A Store (otpcore.store.interface) on one PostgreSQL connection."""

    dialect = POSTGRES
    _engine_errors = (psycopg.Error,)
    _user_sql = UserSql(POSTGRES)
    _token_sql = TokenSql(POSTGRES)
    _challenge_sql = ChallengeSql(POSTGRES)
    _audit_sql = AuditSql(POSTGRES)
    _session_sql = SessionSql(POSTGRES)
    _throttle_sql = ThrottleSql(POSTGRES)
    _phantom_sql = PhantomSql(POSTGRES)
    _reply_group_sql = ReplyGroupSql(POSTGRES)
    _reversible_sql = ReversibleSql(POSTGRES)
    _portal_sql = PortalSql(POSTGRES)

    def __init__(self, conn: psycopg.Connection[Any], where: str) -> None:
        super().__init__()
        self._conn = conn
        self._cursor = conn.cursor()
        self._trips = Trips(conn)
        self.where = where  # the URL without a password, for messages

    @classmethod
    def open(cls, config: StoreConfig, *, create: bool = False, migrate: bool = True) -> PostgresStore:
        """Connect; with `create`, make the schema if there is none. A schema behind this program's is migrated.
        With `migrate` False, only connect (to look at the schema_version())."""
        store = cls(connect(config), config.where)
        if not migrate:
            return store
        try:
            version = store.schema_version()
            if version == 0 and not create:
                raise StoreError(f"store {store.where} is not initialised (run `otp-admin init`)")
            if version > SCHEMA_VERSION:
                raise StoreError(f"store {store.where} has schema {version}, newer than this program "
                                 f"({SCHEMA_VERSION})")
            if version < SCHEMA_VERSION:
                store._migrate()
        except BaseException:
            store.close_quietly()
            raise
        return store

    def schema_version(self) -> int:
        """0: no schema (an empty database)."""
        # pg_class read as a table (this statement's snapshot), not through to_regclass's cache, which can miss a
        # table another server created while this one waited for the migration lock
        row = self._one("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relname = 'schema_version' AND "
                        "relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema()))")
        if not row or not row[0]:
            return 0
        row = self._one("SELECT version FROM schema_version")
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        from .schema import MIGRATIONS

        with self.transaction():
            self._one(self.dialect.sql(self.dialect.lock_key), ("otp-server schema",))
            version = self.schema_version()  # again, under the lock: another server may have migrated meanwhile
            for target, statements in MIGRATIONS:
                if version < target:
                    for statement in statements:
                        self._run(statement)
                    self._run("UPDATE schema_version SET version = %s", (target,))
                    version = target

    def close(self) -> None:
        self._conn.close()

    def close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    @property
    def broken(self) -> bool:
        """The connection is lost: this store is no use any more (open a new one)."""
        return self._conn.closed or self._conn.broken

    # -- compare-and-set, deferred in a group (see trips.py) ------------------------------------------------------

    def advance_hotp(self, token_id: int, *, expected: int, new_counter: int) -> bool:
        if not self._group or new_counter <= expected:
            return super().advance_hotp(token_id, expected=expected, new_counter=new_counter)
        self._changed("token", token_id)
        self._trips.hotp.append((token_id, expected, new_counter))
        return True

    def advance_totp(self, token_id: int, *, expected: int, new_step: int, drift: int) -> bool:
        if not self._group or new_step <= expected:
            return super().advance_totp(token_id, expected=expected, new_step=new_step, drift=drift)
        self._changed("token", token_id)
        self._trips.totp.append((token_id, expected, new_step, drift))
        return True

    # -- the primitives of SqlStore -----------------------------------------------------------------------------------

    def _execute(self, sql: str, params: Params) -> None:
        try:
            self._trips.send(self._cursor, sql, params)
        except psycopg.Error as exc:
            raise self._store_error(exc) from None

    def _one(self, sql: str, params: Params = ()) -> Params | None:
        self._execute(sql, params)
        try:
            row: Params | None = self._cursor.fetchone()
        except psycopg.Error as exc:
            raise self._store_error(exc) from None
        return row

    def _all(self, sql: str, params: Params = ()) -> list[Params]:
        self._execute(sql, params)
        try:
            return self._cursor.fetchall()
        except psycopg.Error as exc:
            raise self._store_error(exc) from None

    def _run(self, sql: str, params: Params = ()) -> int:
        self._execute(sql, params)
        return self._cursor.rowcount

    def _locked_all(self, lock: str, sql: str, params: Params) -> list[Params]:
        if not (lock and self._depth):
            return self._all(sql, params)
        try:  # both in one round trip: the read starts (and takes its snapshot) once the locks are held
            self._trips.send(self._cursor, sql, params, before=[(lock, params)])
            return self._cursor.fetchall()
        except psycopg.Error as exc:
            raise self._store_error(exc) from None

    def _many(self, sql: str, rows: Sequence[Params]) -> None:
        try:
            self._trips.send(self._cursor)
            self._cursor.executemany(sql, rows)  # pipelined: one round trip for all of them
        except psycopg.Error as exc:
            raise self._store_error(exc, "store write failed") from None

    def _begin(self) -> None:
        self._trips.begin = True

    def _flush_audit(self, rows: Sequence[Params]) -> None:
        self._trips.audit = rows  # inserted in one statement, with the COMMIT

    def _commit(self) -> None:
        if self._trips.begin and not self._trips.deferred and not self._trips.audit:
            self._trips.clear()  # nothing was sent: nothing to commit
            return
        try:
            done = self._trips.send(self._cursor, commit=True)
        except psycopg.Error as exc:  # a lost connection: committed or not, nobody knows, so no Accept is sent
            raise self._store_error(exc, "store write failed") from None
        if done is None or done.statusmessage != "COMMIT":  # the server rolled back a transaction an error aborted
            raise StoreError("store write failed: the transaction was rolled back")

    def _rollback(self) -> None:
        began = not self._trips.begin
        self._trips.clear()
        with contextlib.suppress(psycopg.Error):
            if began and not self.broken and self._conn.info.transaction_status != TransactionStatus.IDLE:
                self._cursor.execute("ROLLBACK")

    def _store_error(self, exc: psycopg.Error, what: str = "store error") -> StoreError:
        if isinstance(exc, psycopg.IntegrityError):
            return StoreError(f"refused by the store: {reason(exc)}")
        if self.broken:
            return StoreError(f"store {self.where} unavailable: {reason(exc)}")
        if isinstance(exc, pgerrors.DivisionByZero):  # trips.py: a deferred compare-and-set did not move its row
            return StoreError("store write failed: a token was changed by somebody else during the group")
        if isinstance(exc, pgerrors.ReadOnlySqlTransaction):  # a primary turned standby: reconnect to find the new one
            return StoreError(f"store {self.where} is read-only (a standby?): {reason(exc)}")
        return StoreError(f"{what}: {reason(exc)}")
