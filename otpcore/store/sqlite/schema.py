"""The SQLite schema, created and migrated through sqlite-utils (imported only when the schema is behind: logins
never pay for its import). `PRAGMA user_version` holds the schema version; each step brings it one version up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["MIGRATIONS"]


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


# (version reached, step); the last version is rows.SCHEMA_VERSION
def _migration_audit_source(db: Any) -> None:
    """Where each audited request came from (rows written before stay without)."""
    db.execute("ALTER TABLE audit ADD COLUMN source TEXT")


def _migration_phantoms(db: Any) -> None:
    """Failed logins of names nobody has, counted and locked like a user's (otpcore.store.phantoms)."""
    db.execute("CREATE TABLE phantoms (key BLOB PRIMARY KEY, failures INTEGER NOT NULL, last_bad BLOB, "
               "locked_at FLOAT, lockouts INTEGER NOT NULL, updated FLOAT NOT NULL)")
    db.execute("CREATE INDEX idx_phantoms_updated ON phantoms (updated)")


def _migration_directory_users(db: Any) -> None:
    """Users of the directory ([ldap]): rows made by `token add` for a name the directory has; their addresses are
    read from the directory when a code is sent, never copied here."""
    db.execute("ALTER TABLE users ADD COLUMN directory INTEGER NOT NULL DEFAULT 0")


def _migration_reply_attributes(db: Any) -> None:
    """What an Access-Accept grants: groups of users with their reply attributes, and each user's group and own
    attributes (JSON lists of [name, value], otpcore.replies). Users without either read two NULLs more, no join."""
    for sql in (
        "CREATE TABLE reply_groups (name TEXT PRIMARY KEY, attributes TEXT NOT NULL, created FLOAT NOT NULL, "
        "updated FLOAT NOT NULL)",
        "ALTER TABLE users ADD COLUMN reply_group TEXT REFERENCES reply_groups (name)",
        "ALTER TABLE users ADD COLUMN reply TEXT",
        "CREATE INDEX idx_users_reply_group ON users (reply_group) WHERE reply_group IS NOT NULL",
    ):
        db.execute(sql)


def _migration_reversible_passwords(db: Any) -> None:
    """The sealed passwords of the users who opted in to challenge-response logins (otpcore.store.reversible)."""
    db.execute("CREATE TABLE reversible_passwords (user_id INTEGER PRIMARY KEY REFERENCES users (id), "
               "sealed BLOB NOT NULL)")


def _migration_portal(db: Any) -> None:
    """The self-service portal of otp-web: its sessions and the enrolment codes of `otp-admin user invite`, each under
    a keyed fingerprint (never the cookie or the code itself)."""
    for sql in (
        'CREATE TABLE portal_sessions (key BLOB PRIMARY KEY, "user" TEXT, stage TEXT NOT NULL, created FLOAT NOT NULL, '
        "expires FLOAT NOT NULL, data TEXT, sealed BLOB)",
        "CREATE INDEX idx_portal_sessions_expires ON portal_sessions (expires)",
        'CREATE TABLE invites ("user" TEXT PRIMARY KEY, code_hash BLOB NOT NULL, created FLOAT NOT NULL, '
        "expires FLOAT NOT NULL)",
    ):
        db.execute(sql)


MIGRATIONS: list[tuple[int, Callable[[Any], None]]] = [
    (1, _migration_1), (2, _migration_sessions), (3, _migration_audit_appends), (4, _migration_hardening),
    (5, _migration_audit_source), (6, _migration_phantoms), (7, _migration_directory_users),
    (8, _migration_reply_attributes), (9, _migration_reversible_passwords), (10, _migration_portal),
]
