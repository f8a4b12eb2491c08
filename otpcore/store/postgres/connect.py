"""Connecting to the PostgreSQL store: the URL of the configuration, the password from its own file, the options
that make a dead or unreachable server a quick and clear failure, and errors as one line.

The URL may name several hosts (`postgresql://otp@db1,db2/otp?target_session_attrs=read-write`): libpq tries them
in order and keeps the one that accepts writes, so after a failover the next connection finds the new primary.
Options the URL sets win over the defaults here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from otpbase.escape import escape

from ...config import StoreConfig
from ...errors import StoreError

__all__ = ["DEFAULTS", "SESSION", "connect", "reason"]

# Per host tried: an unreachable one costs connect_timeout seconds. Once connected, a server that vanishes (power
# loss, a partition) is noticed by TCP after tcp_user_timeout ms of unacknowledged data, or by the keepalives when
# idle: without them a request in flight could wait for the kernel's retransmissions, many minutes.
DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
    "application_name": "otp-server",
}
# A peer holding a user's row cannot stall a request for long (lock_timeout), and a process that stops mid-
# transaction frees its rows (idle_in_transaction_session_timeout). Durability (synchronous_commit) is the server's
# setting, never lowered here.
SESSION = "SET lock_timeout = '10s'; SET idle_in_transaction_session_timeout = '60s'"


def connect(config: StoreConfig) -> psycopg.Connection[Any]:
    """An autocommit connection (each transaction is an explicit BEGIN ... COMMIT) to the store at `config.url`."""
    assert config.url is not None
    try:
        given = conninfo_to_dict(config.url)
    except psycopg.Error as exc:
        shown = reason(exc).replace(escape(config.url), config.where)  # libpq quotes the URL, password and all
        raise StoreError(f"store.url is not a valid PostgreSQL URL: {shown}") from None
    options: dict[str, Any] = {name: value for name, value in DEFAULTS.items() if name not in given}
    if config.password_file is not None:
        options["password"] = read_password(config.password_file)
    try:
        conn = psycopg.connect(config.url, autocommit=True, **options)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the store {config.where}: {reason(exc)}") from None
    try:
        conn.execute(SESSION)
    except psycopg.Error as exc:
        conn.close()
        raise StoreError(f"cannot use the store {config.where}: {reason(exc)}") from None
    return conn


def read_password(path: Path) -> str:
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read store.password_file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not password:
        raise StoreError(f"store.password_file {path} is empty")
    return password


def reason(exc: BaseException) -> str:
    """What went wrong, in one escaped line. A failed connection lists every host tried, one per line: the last one's
    reason is kept ("Connection refused", "FATAL: password authentication failed for user ..."). No password is in
    any of these messages; a DETAIL line, which may quote values of rows, is left out."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    attempts = [line for line in lines if line.startswith("- host") or "failed:" in line]
    line = attempts[-1] if attempts else lines[0]
    if "failed: " in line:
        line = line.rpartition("failed: ")[2]
    return escape(" ".join(line.split()))
