"""The SQLite store: users, tokens, challenges, audit. The only module that touches SQLite.

WAL mode with a busy timeout, so a PAM login and several otp-radiusd workers share one file. Every verification runs
in one `BEGIN IMMEDIATE` transaction (read, decide, write, audit), and counters / time steps advance by
compare-and-set on top of that, so two processes can never accept the same code. A transaction may hold a group of
verifications (group commit): their users are read together (`prefetch`), their audit rows written together at the
end.
Schema creation and migrations go through sqlite-utils, imported only when the schema is behind.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from .errors import NotFoundError, StoreError
from .policy import NO_THROTTLE, FailureState, ThrottleState

__all__ = ["SCHEMA_VERSION", "AuditRow", "ChallengeRow", "NasClosed", "SessionEvent", "SessionRow", "SessionWrite",
           "Store", "TokenRow", "UserRow"]

SCHEMA_VERSION = 5
BUSY_TIMEOUT_MS = 10_000


class UserRow(NamedTuple):
    id: int
    name: str
    email: str | None
    phone: str | None
    password_hash: str | None
    failures: int
    last_bad: bytes | None
    locked_at: float | None
    created: float
    lockouts: int  # lockouts in a row since the last success or unlock (policy: each lasts twice the one before)
    oob_sends: str | None  # JSON list of the times email/sms codes were sent to the user in the last day


class TokenRow(NamedTuple):
    id: int
    user_id: int
    type: str
    algorithm: str
    digits: int
    period: int
    t0: int
    counter: int  # HOTP: the next counter expected
    last_step: int  # TOTP: the last accepted time step (-1: none yet)
    drift: int  # TOTP: steps between the token's clock and ours at the last accept
    window: int | None  # per-token override of totp_window / hotp_lookahead (e.g. from google-authenticator)
    secret: bytes | None  # sealed
    issuer: str | None
    active: bool
    created: float
    options: str | None  # JSON: per-token knobs of out-of-band tokens
    seal: int  # how the secret is bound to the row: 1 = token id only (before schema 4), 2 = id, owner, parameters


@dataclass(frozen=True, slots=True)
class ChallengeRow:
    state: bytes
    user_id: int
    client: str
    token_id: int | None
    created: float
    expires: float
    code_hash: bytes | None
    attempts: int
    state_expires: float | None = None  # when the State stops being accepted (None: at `expires`)


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    time: float
    user: str | None
    door: str
    client: str | None
    result: str
    reason: str
    source: str | None = None  # where the request came from: the RADIUS peer's address, the PAM rhost (schema 5)


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """What one Accounting-Request says about a session (RFC 2866), as the store records it."""

    client: str  # the configured RADIUS client's name
    session_id: str  # Acct-Session-Id
    event_time: float  # when it happened at the NAS: Event-Timestamp, else arrival minus Acct-Delay-Time
    user: str | None = None
    nas_address: str | None = None  # NAS-IP-Address / NAS-IPv6-Address, else the packet's source address
    nas_identifier: str | None = None
    framed_ip: str | None = None
    calling_station: str | None = None
    session_time: int | None = None  # Acct-Session-Time
    input_octets: int | None = None  # Gigawords included
    output_octets: int | None = None
    terminate_cause: str | None = None


class SessionWrite(enum.StrEnum):
    """What an Accounting-Request did to the sessions table."""

    RECORDED = "recorded"
    REPEATED = "already recorded"  # nothing new: a resent or late request
    STALE = "stale"  # older than the session's start: about an earlier session, ignored


class NasClosed(NamedTuple):
    """Accounting-On/Off: sessions closed, and open sessions left alone because they started after it."""

    closed: int
    stale: int


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    client: str
    session_id: str
    user: str | None
    nas_address: str | None
    nas_identifier: str | None
    framed_ip: str | None
    calling_station: str | None
    start_time: float
    last_update: float
    stop_time: float | None
    session_time: int | None
    input_octets: int | None
    output_octets: int | None
    terminate_cause: str | None
    status: str  # active | stopped (Stop received) | closed (Accounting-On/Off of its NAS)


_USER_COLS = "id, name, email, phone, password_hash, failures, last_bad, locked_at, created, lockouts, oob_sends"
_TOKEN_COLS = (
    "id, user_id, type, algorithm, digits, period, t0, counter, last_step, drift, window, secret, issuer, active, "
    "created, options, seal"
)
# The statements of every verification, made once (the sqlite3 module finds its prepared statement by the text).
_USER_BY_NAME = f"SELECT {_USER_COLS} FROM users WHERE name = ?"
_USERS_JOIN_TOKENS = (
    f"SELECT {', '.join('u.' + c for c in _USER_COLS.split(', '))}, "
    f"{', '.join('t.' + c for c in _TOKEN_COLS.split(', '))} "
    "FROM users u LEFT JOIN tokens t ON t.user_id = u.id AND t.active = 1"
)
_USER_WITH_TOKENS = f"{_USERS_JOIN_TOKENS} WHERE u.name = ? ORDER BY t.id"
_USERS_WITH_TOKENS = f"{_USERS_JOIN_TOKENS} WHERE u.name IN (SELECT value FROM json_each(?)) ORDER BY u.id, t.id"
_ACTIVE_TOKENS = f"SELECT {_TOKEN_COLS} FROM tokens WHERE user_id = ? AND active = 1 ORDER BY id"
_AUDIT_INSERT = "INSERT INTO audit (time, user, door, client, result, reason, source) VALUES (?, ?, ?, ?, ?, ?, ?)"
_CHALLENGE_COLS = "state, user_id, client, token_id, created, expires, code_hash, attempts, state_expires"
_SESSION_COLS = (
    "id, client, session_id, user, nas_address, nas_identifier, framed_ip, calling_station, start_time, last_update, "
    "stop_time, session_time, input_octets, output_octets, terminate_cause, status"
)


class Store:
    """One connection to the store. Not thread-safe: one per thread or process."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._depth = 0
        self._pending_audit: list[tuple[Any, ...]] = []  # audit rows of the open transaction, written at its end
        self._prefetched: dict[str, tuple[UserRow | None, list[TokenRow]]] = {}  # prefetch(), in the transaction
        self._prefetched_ids: dict[tuple[str, int], str] = {}  # ("user" | "token", id) -> name, of _prefetched
        self._throttles: dict[str, ThrottleState] = {}  # throttle(), read in the open transaction

    # -- opening ------------------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> Store:
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
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across process crashes in WAL mode; only a power loss can drop the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        store = cls(conn, path)
        if version < SCHEMA_VERSION:
            if not create and version == 0:
                conn.close()
                raise StoreError(f"store {path} is not initialised (run `otp-admin init`)")
            store._migrate(version)
        elif version > SCHEMA_VERSION:
            conn.close()
            raise StoreError(f"store {path} has schema {version}, newer than this program ({SCHEMA_VERSION})")
        return store

    def close(self) -> None:
        self._conn.close()

    # -- write-ahead log ----------------------------------------------------------------------------------------------
    # By default the commit that makes the WAL reach 1000 pages copies them into the database, with two fsyncs, while
    # its caller waits. A server can leave that to a background thread: set_wal_autocheckpoint(0) on the connections
    # that answer requests, and checkpoint() from another connection now and then.

    def set_wal_autocheckpoint(self, pages: int) -> None:
        """Checkpoint at the commit that makes the WAL reach `pages` pages; 0: never on this connection."""
        self._exec(f"PRAGMA wal_autocheckpoint = {int(pages)}")

    def checkpoint(self) -> tuple[int, int]:
        """A PASSIVE checkpoint (waits for nobody, blocks nobody): (pages in the WAL, pages copied so far)."""
        _, wal_pages, copied = self._exec("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(wal_pages), int(copied)

    # -- transactions -------------------------------------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front so read-decide-write cannot interleave.

        Nested blocks join the outermost one, whose end commits them all (or rolls them all back)."""
        return _Transaction(self)

    def _rollback(self) -> None:
        """ROLLBACK if a transaction is still open: after a full disk or an I/O error SQLite may have rolled back
        already, and a failing ROLLBACK must not replace the error being reported."""
        if self._conn.in_transaction:
            with suppress(sqlite3.DatabaseError):
                self._conn.execute("ROLLBACK")

    def _exec(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"refused by the store: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store error: {exc}") from None

    # -- users --------------------------------------------------------------------------------------------------------

    def user(self, name: str) -> UserRow | None:
        if not _encodable(name):
            return None  # lone surrogates from undecodable input: no such user can exist
        row = self._exec(_USER_BY_NAME, (name,)).fetchone()
        return UserRow._make(row) if row else None

    def user_with_tokens(self, name: str) -> tuple[UserRow | None, list[TokenRow]]:
        """The user and its active tokens (oldest first), in one query: a verification's first read."""
        if self._prefetched:
            prefetched = self._prefetched.pop(name, None)
            if prefetched is not None:
                return prefetched
        if not _encodable(name):
            return None, []
        rows = self._exec(_USER_WITH_TOKENS, (name,)).fetchall()
        if not rows:
            return None, []
        split = len(UserRow._fields)
        return UserRow._make(rows[0][:split]), [_token(r[split:]) for r in rows if r[split] is not None]

    def users_with_tokens(self, names: Sequence[str]) -> dict[str, tuple[UserRow | None, list[TokenRow]]]:
        """user_with_tokens() of several users, in one query (a query costs more than the rows it reads)."""
        out: dict[str, tuple[UserRow | None, list[TokenRow]]] = {name: (None, []) for name in names}
        split = len(UserRow._fields)
        # json_each ends a string at a NUL; no stored name has one (nor undecodable characters).
        wanted = json.dumps([name for name in out if _encodable(name) and "\0" not in name])
        for row in self._exec(_USERS_WITH_TOKENS, (wanted,)):
            name = row[1]
            entry = out.get(name)
            if entry is None:  # not asked for (SQLite compares as its JSON parser reads): not a match
                continue
            if entry[0] is None:
                entry = out[name] = (UserRow._make(row[:split]), entry[1])
            if row[split] is not None:
                entry[1].append(_token(row[split:]))
        return out

    def prefetch(self, names: Sequence[str]) -> None:
        """Inside a transaction, for a batch of verifications: read these users and their tokens now, in one query.
        user_with_tokens() then takes each from here once; a second read of a user (which may follow a write of its
        rows) goes to the store. So each verification must read its user before writing its rows, and write no
        other user's: true of login(). Forgotten at the end of the transaction."""
        if not self._depth:
            raise StoreError("prefetch outside a transaction")
        self._prefetched = self.users_with_tokens(names)
        self._prefetched_ids = {}
        for name, (row, tokens) in self._prefetched.items():
            if row is not None:
                self._prefetched_ids["user", row.id] = name
                for token in tokens:
                    self._prefetched_ids["token", token.id] = name

    def _changed(self, kind: str, row_id: int) -> None:
        """A user's or a token's row is written: a prefetched copy of it is no longer what the store holds. A row
        whose owner is not known here (e.g. an inactive token made active) forgets every prefetched user."""
        if self._prefetched:
            name = self._prefetched_ids.get((kind, row_id))
            if name is None:
                self._prefetched = {}
            else:
                self._prefetched.pop(name, None)

    def user_by_id(self, user_id: int) -> UserRow | None:
        row = self._exec(f"SELECT {_USER_COLS} FROM users WHERE id = ?", (user_id,)).fetchone()
        return UserRow._make(row) if row else None

    def require_user(self, name: str) -> UserRow:
        user = self.user(name)
        if user is None:
            raise NotFoundError(f"no such user: {name}")
        return user

    def users(self) -> list[UserRow]:
        return [UserRow._make(r) for r in self._exec(f"SELECT {_USER_COLS} FROM users ORDER BY name")]

    def add_user(
        self, name: str, *, email: str | None, phone: str | None, password_hash: str | None, now: float
    ) -> int:
        if self.user(name) is not None:
            raise StoreError(f"user already exists: {name}")
        self._prefetched.pop(name, None)  # prefetched as unknown
        cur = self._exec(
            "INSERT INTO users (name, email, phone, password_hash, failures, created) VALUES (?, ?, ?, ?, 0, ?)",
            (name, email, phone, password_hash, now),
        )
        return int(cur.lastrowid or 0)

    def update_user_contact(self, user_id: int, *, email: str | None, phone: str | None) -> None:
        self._changed("user", user_id)
        self._exec("UPDATE users SET email = coalesce(?, email), phone = coalesce(?, phone) WHERE id = ?",
                   (email, phone, user_id))

    def set_user_contact(self, user_id: int, *, email: str | None, phone: str | None) -> None:
        """Both addresses as given (None clears one)."""
        self._changed("user", user_id)
        self._exec("UPDATE users SET email = ?, phone = ? WHERE id = ?", (email, phone, user_id))

    def set_password_hash(self, user_id: int, password_hash: str | None) -> None:
        self._changed("user", user_id)
        self._exec("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    def delete_user(self, user_id: int) -> None:
        self._changed("user", user_id)
        self._exec("DELETE FROM challenges WHERE user_id = ?", (user_id,))
        self._exec("DELETE FROM tokens WHERE user_id = ?", (user_id,))
        self._exec("DELETE FROM users WHERE id = ?", (user_id,))

    def set_failure_state(self, user_id: int, state: FailureState) -> None:
        self._changed("user", user_id)
        self._exec(
            "UPDATE users SET failures = ?, last_bad = ?, locked_at = ?, lockouts = ? WHERE id = ?",
            (state.failures, state.last_bad, state.locked_at, state.lockouts, user_id),
        )

    def set_oob_sends(self, user_id: int, sends: str | None) -> None:
        self._changed("user", user_id)
        self._exec("UPDATE users SET oob_sends = ? WHERE id = ?", (sends, user_id))

    # -- per-client throttle ------------------------------------------------------------------------------------------

    def throttle(self, key: str) -> ThrottleState:
        """The client's failed-login bucket (policy.throttled); read once per transaction."""
        cached = self._throttles.get(key)
        if cached is not None:
            return cached
        row = self._exec("SELECT level, updated FROM throttle WHERE key = ?", (key,)).fetchone()
        state = ThrottleState(*row) if row else NO_THROTTLE
        if self._depth:
            self._throttles[key] = state
        return state

    def set_throttle(self, key: str, state: ThrottleState) -> None:
        self._throttles.pop(key, None)
        self._exec("INSERT INTO throttle (key, level, updated) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                   "level = excluded.level, updated = excluded.updated", (key, state.level, state.updated))

    # -- tokens -------------------------------------------------------------------------------------------------------

    def token(self, token_id: int) -> TokenRow | None:
        row = self._exec(f"SELECT {_TOKEN_COLS} FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return _token(row) if row else None

    def require_token(self, token_id: int) -> TokenRow:
        token = self.token(token_id)
        if token is None:
            raise NotFoundError(f"no such token: {token_id}")
        return token

    def tokens(self, user_id: int | None = None, *, active_only: bool = False) -> list[TokenRow]:
        if user_id is not None and active_only:
            return [_token(r) for r in self._exec(_ACTIVE_TOKENS, (user_id,))]
        sql = f"SELECT {_TOKEN_COLS} FROM tokens WHERE 1"
        params: list[Any] = []
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        if active_only:
            sql += " AND active = 1"
        return [_token(r) for r in self._exec(sql + " ORDER BY id", tuple(params))]

    def add_token(self, user_id: int, fields: dict[str, Any], now: float) -> int:
        """A new token row; its secret (if any) is set with set_token_secret once the row's id is known."""
        self._changed("user", user_id)
        fields = {"seal": 2, **fields}
        cols = ["user_id", "created", *fields]
        cur = self._exec(
            f"INSERT INTO tokens ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            (user_id, now, *fields.values()),
        )
        return int(cur.lastrowid or 0)

    def update_token(self, token_id: int, fields: dict[str, Any]) -> None:
        """Set columns of a token (names from the caller's code, never from input)."""
        self._changed("token", token_id)
        assignments = ", ".join(f"{column} = ?" for column in fields)
        self._exec(f"UPDATE tokens SET {assignments} WHERE id = ?", (*fields.values(), token_id))

    def set_token_secret(self, token_id: int, sealed: bytes) -> None:
        """The sealed secret, bound to the row's id, owner and parameters (seal 2)."""
        self._changed("token", token_id)
        self._exec("UPDATE tokens SET secret = ?, seal = 2 WHERE id = ?", (sealed, token_id))

    def tokens_sealed_before(self, seal: int) -> list[TokenRow]:
        """Tokens whose secret is bound the old way (the partial index makes the usual answer, none, cheap)."""
        return [_token(r) for r in self._exec(f"SELECT {_TOKEN_COLS} FROM tokens WHERE seal < ? AND secret IS NOT "
                                              "NULL ORDER BY id", (seal,))]

    def set_token_active(self, token_id: int, active: bool) -> None:
        self._changed("token", token_id)
        self._exec("UPDATE tokens SET active = ? WHERE id = ?", (int(active), token_id))

    def delete_token(self, token_id: int) -> None:
        self._changed("token", token_id)
        self._exec("DELETE FROM challenges WHERE token_id = ?", (token_id,))
        self._exec("DELETE FROM tokens WHERE id = ?", (token_id,))

    def advance_hotp(self, token_id: int, *, expected: int, new_counter: int) -> bool:
        """Compare-and-set: move the counter forward only if nobody else moved it. False means lost the race."""
        self._changed("token", token_id)
        cur = self._exec(
            "UPDATE tokens SET counter = ? WHERE id = ? AND counter = ? AND ? > counter",
            (new_counter, token_id, expected, new_counter),
        )
        return cur.rowcount == 1

    def advance_totp(self, token_id: int, *, expected: int, new_step: int, drift: int) -> bool:
        """Compare-and-set: record the accepted step only if it is newer than the last one and nobody moved it."""
        self._changed("token", token_id)
        cur = self._exec(
            "UPDATE tokens SET last_step = ?, drift = ? WHERE id = ? AND last_step = ? AND ? > last_step",
            (new_step, drift, token_id, expected, new_step),
        )
        return cur.rowcount == 1

    # -- challenges ---------------------------------------------------------------------------------------------------

    def add_challenge(self, row: ChallengeRow) -> None:
        self._exec(
            f"INSERT INTO challenges ({_CHALLENGE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.state, row.user_id, row.client, row.token_id, row.created, row.expires, row.code_hash, row.attempts,
             row.state_expires),
        )

    def take_challenge(self, state: bytes) -> ChallengeRow | None:
        """Remove and return the challenge: a State is single use."""
        row = self._exec(f"DELETE FROM challenges WHERE state = ? RETURNING {_CHALLENGE_COLS}", (state,)).fetchone()
        return ChallengeRow(*row) if row else None

    def challenge(self, state: bytes) -> ChallengeRow | None:
        row = self._exec(f"SELECT {_CHALLENGE_COLS} FROM challenges WHERE state = ?", (state,)).fetchone()
        return ChallengeRow(*row) if row else None

    def purge_challenges(self, now: float) -> None:
        self._exec("DELETE FROM challenges WHERE expires < ?", (now,))

    def code_challenges(self, user_id: int) -> list[ChallengeRow]:
        """The user's challenges that carry a sent code (email/sms), newest first."""
        rows = self._exec(f"SELECT {_CHALLENGE_COLS} FROM challenges WHERE user_id = ? AND code_hash IS NOT NULL "
                          "ORDER BY created DESC", (user_id,))
        return [ChallengeRow(*r) for r in rows]

    def set_challenge_attempts(self, state: bytes, attempts: int) -> None:
        self._exec("UPDATE challenges SET attempts = ? WHERE state = ?", (attempts, state))

    def delete_challenge(self, state: bytes) -> None:
        self._exec("DELETE FROM challenges WHERE state = ?", (state,))

    def set_token_option(self, token_id: int, key: str, value: Any) -> None:
        """Set one key of the token's options JSON (e.g. the last send time of an email/sms token)."""
        self._changed("token", token_id)
        self._exec("UPDATE tokens SET options = json_set(coalesce(options, '{}'), ?, ?) WHERE id = ?",
                   (f"$.{key}", value, token_id))

    # -- audit --------------------------------------------------------------------------------------------------------

    def audit(
        self, *, now: float, user: str | None, door: str, client: str | None, result: str, reason: str,
        source: str | None = None,
    ) -> None:
        """One audit row. Inside a transaction it is written at the transaction's end, with the others in one
        statement (so audit_rows() in the same transaction does not see it yet); rolled back with the rest."""
        row = (now, _printable(user), door, _printable(client), result, reason, _printable(source))
        if self._depth:
            self._pending_audit.append(row)  # written with the others at the end of the transaction, in one statement
        else:
            self._exec(_AUDIT_INSERT, row)

    def audit_rows(self, *, user: str | None = None, since: float | None = None, limit: int | None = None
                   ) -> list[AuditRow]:
        sql = "SELECT id, time, user, door, client, result, reason, source FROM audit WHERE 1"
        params: list[Any] = []
        if user is not None:
            sql += " AND user = ?"
            params.append(user)
        if since is not None:
            sql += " AND time >= ?"
            params.append(since)
        sql += " ORDER BY time, id"  # the index by time: --since reads only that part of the trail
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [AuditRow(*r) for r in self._exec(sql, tuple(params))]

    # -- accounting sessions ------------------------------------------------------------------------------------------
    # Idempotent: an Accounting-Request sent again (a retransmission the duplicate cache did not catch, e.g. from a new
    # source port or with a new Acct-Delay-Time) changes nothing. A session is (client, Acct-Session-Id); a NAS that
    # reuses an Acct-Session-Id after the session stopped gets a new row from its next Start. An Interim-Update, Stop
    # or Accounting-On/Off whose event time is before a session's start is about an earlier session (a late packet or
    # a replay): it is stale for that session and never touches it.

    def session_start(self, event: SessionEvent) -> SessionWrite:
        """Record a Start. REPEATED when the session is already known (a repeated or late Start)."""
        with self.transaction():
            row = self._latest_session(event)
            if row is not None and (row.stop_time is None or event.event_time <= row.stop_time):
                self._merge_session(row, event, stop=False)
                return SessionWrite.REPEATED
            self._insert_session(event, start_time=event.event_time, stop=False)
            return SessionWrite.RECORDED

    def session_update(self, event: SessionEvent) -> SessionWrite:
        """Record an Interim-Update; opens the session if its Start was lost."""
        with self.transaction():
            row = self._latest_session(event)
            if row is None:
                self._insert_session(event, start_time=_started(event), stop=False)
                return SessionWrite.RECORDED
            if event.event_time < row.start_time:
                return SessionWrite.STALE
            if row.stop_time is not None:
                return SessionWrite.REPEATED  # a late update of a finished session
            return self._merge_session(row, event, stop=False)

    def session_stop(self, event: SessionEvent) -> SessionWrite:
        """Record a Stop; records the whole session if its Start was lost."""
        with self.transaction():
            row = self._latest_session(event)
            if row is None:
                self._insert_session(event, start_time=_started(event), stop=True)
                return SessionWrite.RECORDED
            if event.event_time < row.start_time:
                return SessionWrite.STALE  # an earlier session's Stop must not close this one
            if row.status == "stopped":
                return SessionWrite.REPEATED
            return self._merge_session(row, event, stop=True)  # open, or closed by Accounting-On/Off meanwhile

    def close_nas_sessions(self, client: str, nas_address: str | None, nas_identifier: str | None, *, now: float,
                           cause: str = "NAS-Reboot") -> NasClosed:
        """Accounting-On/Off at `now` (its event time): the NAS restarted or stops, so none of the sessions it had
        then is open any more. Sessions that started after it are left open and counted as `stale`."""
        where = "WHERE client = ? AND stop_time IS NULL AND nas_address IS ?"
        params: list[Any] = [client, nas_address]
        if nas_identifier is not None:
            where += " AND nas_identifier IS ?"
            params.append(nas_identifier)
        with self.transaction():
            closed = self._exec("UPDATE sessions SET stop_time = max(?, last_update), status = 'closed', "
                                f"terminate_cause = coalesce(terminate_cause, ?) {where} AND start_time <= ?",
                                (now, cause, *params, now)).rowcount
            (stale,) = self._exec(f"SELECT count(*) FROM sessions {where}", tuple(params)).fetchone()
            return NasClosed(closed, stale)

    def sessions(self, *, active_only: bool = False, user: str | None = None) -> list[SessionRow]:
        sql = f"SELECT {_SESSION_COLS} FROM sessions WHERE 1"
        params: list[Any] = []
        if active_only:
            sql += " AND stop_time IS NULL"
        if user is not None:
            sql += " AND user = ?"
            params.append(user)
        return [SessionRow(*r) for r in self._exec(sql + " ORDER BY start_time, id", tuple(params))]

    def _latest_session(self, event: SessionEvent) -> SessionRow | None:
        row = self._exec(f"SELECT {_SESSION_COLS} FROM sessions WHERE client = ? AND session_id = ? "
                         "ORDER BY id DESC LIMIT 1", (event.client, event.session_id)).fetchone()
        return SessionRow(*row) if row else None

    def _insert_session(self, event: SessionEvent, *, start_time: float, stop: bool) -> None:
        self._exec(
            f"INSERT INTO sessions ({_SESSION_COLS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.client, event.session_id, event.user, event.nas_address, event.nas_identifier, event.framed_ip,
             event.calling_station, start_time, event.event_time, event.event_time if stop else None,
             event.session_time, event.input_octets, event.output_octets,
             event.terminate_cause if stop else None, "stopped" if stop else "active"),
        )

    def _merge_session(self, row: SessionRow, event: SessionEvent, *, stop: bool) -> SessionWrite:
        merged = _merge(row, event, stop=stop)
        if merged == row:
            return SessionWrite.REPEATED
        self._exec(
            "UPDATE sessions SET user = ?, nas_identifier = ?, framed_ip = ?, calling_station = ?, last_update = ?, "
            "stop_time = ?, session_time = ?, input_octets = ?, output_octets = ?, terminate_cause = ?, status = ? "
            "WHERE id = ?",
            (merged.user, merged.nas_identifier, merged.framed_ip, merged.calling_station, merged.last_update,
             merged.stop_time, merged.session_time, merged.input_octets, merged.output_octets,
             merged.terminate_cause, merged.status, row.id),
        )
        return SessionWrite.RECORDED

    # -- schema -------------------------------------------------------------------------------------------------------

    def _migrate(self, version: int) -> None:
        import sqlite_utils  # only when the schema is behind: keeps logins free of its import cost

        db = sqlite_utils.Database(self._conn)
        with self.transaction():
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            for target, step in _MIGRATIONS:
                if version < target:
                    step(db)
                    self._conn.execute(f"PRAGMA user_version = {target}")
                    version = target


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str | None) -> str | None:
    """Names from the network as the audit can hold them: undecodable bytes shown as escapes."""
    if text is None or _encodable(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode()


class _Transaction:
    """Store.transaction(): a class rather than a generator, as it is entered several times per verification."""

    __slots__ = ("_outer", "_store")

    def __init__(self, store: Store) -> None:
        self._store = store
        self._outer = False

    def __enter__(self) -> None:
        store = self._store
        if store._depth:
            store._depth += 1
            return
        try:
            store._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store is busy or unwritable: {exc}") from None
        store._depth = 1
        self._outer = True

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        store = self._store
        if not self._outer:
            store._depth -= 1
            return
        store._depth = 0
        if store._prefetched:
            store._prefetched = {}
        if store._throttles:
            store._throttles = {}
        pending, store._pending_audit = store._pending_audit, []
        if exc_type is not None:
            store._rollback()
            return
        try:
            if pending:
                store._conn.executemany(_AUDIT_INSERT, pending)
            store._conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            store._rollback()
            raise StoreError(f"store write failed: {exc}") from None
        except BaseException:  # whatever it is, the write lock is not kept
            store._rollback()
            raise


def _token(row: tuple[Any, ...]) -> TokenRow:
    values = list(row)
    values[13] = bool(values[13])
    return TokenRow._make(values)


def _started(event: SessionEvent) -> float:
    """When a session began, from an Interim-Update or Stop whose Start never arrived."""
    return event.event_time - (event.session_time or 0)


def _grown(old: int | None, new: int | None) -> int | None:
    if new is None:
        return old
    return new if old is None else max(old, new)


def _merge(row: SessionRow, event: SessionEvent, *, stop: bool) -> SessionRow:
    """The session after `event`. Counters only grow and times only move forward, so a replayed or reordered
    request changes nothing; what a Start said (user, NAS) is only filled in, never overwritten."""
    merged = replace(
        row,
        user=row.user or event.user,
        nas_identifier=row.nas_identifier or event.nas_identifier,
        framed_ip=event.framed_ip or row.framed_ip,
        calling_station=row.calling_station or event.calling_station,
        last_update=max(row.last_update, event.event_time),
        session_time=_grown(row.session_time, event.session_time),
        input_octets=_grown(row.input_octets, event.input_octets),
        output_octets=_grown(row.output_octets, event.output_octets),
    )
    if stop:  # session_stop ignores a Stop older than the start, so the stop never precedes it
        merged = replace(merged, stop_time=event.event_time, status="stopped",
                         terminate_cause=event.terminate_cause or row.terminate_cause)
    return merged


def _migration_1(db: Any) -> None:
    db["users"].create(
        {"id": int, "name": str, "email": str, "phone": str, "password_hash": str, "failures": int,
         "last_bad": bytes, "locked_at": float, "created": float},
        pk="id", not_null={"name", "failures", "created"}, defaults={"failures": 0},
    )
    db["users"].create_index(["name"], unique=True)
    db["tokens"].create(
        {"id": int, "user_id": int, "type": str, "algorithm": str, "digits": int, "period": int, "t0": int,
         "counter": int, "last_step": int, "drift": int, "window": int, "secret": bytes, "issuer": str,
         "active": int, "created": float, "options": str},
        pk="id", foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "type", "algorithm", "digits", "period", "t0", "counter", "last_step", "drift",
                  "active", "created"},
        defaults={"algorithm": "SHA1", "digits": 6, "period": 30, "t0": 0, "counter": 0, "last_step": -1,
                  "drift": 0, "active": 1},
    )
    db["tokens"].create_index(["user_id"])
    db["challenges"].create(
        {"state": bytes, "user_id": int, "client": str, "token_id": int, "created": float, "expires": float,
         "code_hash": bytes, "attempts": int},
        pk="state", not_null={"user_id", "client", "created", "expires", "attempts"}, defaults={"attempts": 0},
    )
    db["challenges"].create_index(["expires"])
    db["challenges"].create_index(["user_id"])
    db["audit"].create(
        {"id": int, "time": float, "user": str, "door": str, "client": str, "result": str, "reason": str},
        pk="id", not_null={"time", "door", "result", "reason"},
    )
    db["audit"].create_index(["user", "time"])
    db["audit"].create_index(["time"])


def _migration_sessions(db: Any) -> None:
    """RADIUS accounting (RFC 2866): one row per NAS session."""
    db["sessions"].create(
        {"id": int, "client": str, "session_id": str, "user": str, "nas_address": str, "nas_identifier": str,
         "framed_ip": str, "calling_station": str, "start_time": float, "last_update": float, "stop_time": float,
         "session_time": int, "input_octets": int, "output_octets": int, "terminate_cause": str, "status": str},
        pk="id", not_null={"client", "session_id", "start_time", "last_update", "status"},
    )
    db["sessions"].create_index(["client", "session_id"])
    db["sessions"].create_index(["user", "start_time"])
    db["sessions"].create_index(["stop_time"])


def _migration_audit_appends(db: Any) -> None:
    """Every verification adds an audit row. The index by (user, time) put each one on a random page of its own, to be
    written to the WAL and checkpointed (a fifth of an accept's cost); the rows and the index by time only append.
    `otp-admin audit --user` reads the trail in time order instead (0.2 s a million rows here; with --since, only
    that part of it)."""
    db.execute("DROP INDEX IF EXISTS idx_audit_user_time")


def _migration_hardening(db: Any) -> None:
    """Escalating lockouts, caps on sent codes, secrets bound to their owner and parameters (re-sealed by the next
    program that opens the store with its key), a State lifetime of its own, and the per-client failure throttle."""
    for sql in (
        "ALTER TABLE users ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE users ADD COLUMN oob_sends TEXT",
        "ALTER TABLE tokens ADD COLUMN seal INTEGER NOT NULL DEFAULT 1",
        "UPDATE tokens SET seal = 2 WHERE secret IS NULL",  # email/sms tokens: nothing sealed
        "CREATE INDEX idx_tokens_old_seal ON tokens (id) WHERE seal < 2",
        "ALTER TABLE challenges ADD COLUMN state_expires FLOAT",
        "CREATE TABLE throttle (key TEXT PRIMARY KEY, level FLOAT NOT NULL, updated FLOAT NOT NULL)",
    ):
        db.execute(sql)


def _migration_audit_source(db: Any) -> None:
    """Where each audited request came from (rows written before stay without)."""
    db.execute("ALTER TABLE audit ADD COLUMN source TEXT")


_MIGRATIONS = [(1, _migration_1), (2, _migration_sessions), (3, _migration_audit_appends),
               (4, _migration_hardening), (5, _migration_audit_source)]
