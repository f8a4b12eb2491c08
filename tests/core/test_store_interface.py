"""The store package's seams: every backend implements the whole interface, no engine's exception gets out of it (not at
COMMIT, not while rows are read), nothing else names the engine, and the accounting rules decide without a database."""

from __future__ import annotations

import contextlib
import inspect
import re
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from otpcore.errors import StoreError
from otpcore.store import SessionEvent, SessionRow, SessionWrite, Store, open_store, sessionrules
from otpcore.store.postgres.backend import PostgresStore
from otpcore.store.sqlite import SqliteStore

from .helpers import Installation
from .storekit import backend  # noqa: F401 (the fixture)

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("otpbase", "otpcore", "radiusd", "pam_module", "bench")


def _parameters(function: Any) -> list[tuple[str, Any, Any]]:
    """Names, kinds and defaults (the types are mypy's to check: open_store returns a Store)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def _members(protocol: type) -> dict[str, list[tuple[str, Any, Any]]]:
    return {name: _parameters(value) for name, value in vars(protocol).items()
            if not name.startswith("_") and callable(value)}


@pytest.mark.parametrize("backend_class", [SqliteStore, PostgresStore])
def test_every_backend_implements_the_whole_interface(backend_class: type) -> None:
    wanted = _members(Store)
    assert len(wanted) > 40  # the interface is read, not an empty protocol
    for name, parameters in wanted.items():
        assert hasattr(backend_class, name), f"{backend_class.__name__} lacks {name}"
        assert _parameters(getattr(backend_class, name)) == parameters, name


@pytest.mark.parametrize(("driver", "home"), [("sqlite3", "otpcore/store/"), ("psycopg", "otpcore/store/postgres/")])
def test_only_its_backend_names_an_engine_s_driver(driver: str, home: str) -> None:
    named = []
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith(home) or (package == "bench" and driver == "psycopg"):
                continue  # bench starts a PostgreSQL server of its own
            if re.search(rf"\b{driver}\b", path.read_text()):
                named.append(relative)
    assert named == []


def test_an_error_at_commit_is_a_store_error_and_the_lock_is_released(inst: Installation) -> None:
    store = SqliteStore.open(inst.config.store.path)
    try:
        with pytest.raises(StoreError, match="FOREIGN KEY"), store.transaction():
            store._one("PRAGMA defer_foreign_keys = ON")  # the foreign key is checked at COMMIT, not before
            store.add_token(999, {"type": "totp"}, 0.0)  # no such user
        assert store.tokens() == []  # rolled back
        with store.transaction():  # and the write lock given back
            store.audit(now=0.0, user="x", door="test", client=None, result="ok", reason="after")
        assert [r.reason for r in store.audit_rows(user="x")] == ["after"]
    finally:
        store.close()


def test_an_error_while_rows_are_read_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "otp.sqlite"
    store = SqliteStore.open(path, create=True)
    with store.transaction():
        user = store.add_user("alice", email=None, phone=None, password_hash=None, now=0.0)
        for _ in range(300):
            store.add_token(user, {"type": "totp", "issuer": "x" * 200}, 0.0)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        # the tokens' last leaf page in the table's order: a scan by id reads every other leaf before it
        (last_leaf,) = conn.execute("SELECT pageno FROM dbstat WHERE name = 'tokens' AND pagetype = 'leaf' "
                                    "ORDER BY path DESC LIMIT 1").fetchone()
    conn.close()
    with open(path, "r+b") as f:
        f.seek((last_leaf - 1) * page_size)
        f.write(b"\xa5" * page_size)
    store = SqliteStore.open(path)
    try:
        assert store.user("alice") is not None  # the rest of the file reads
        with pytest.raises(StoreError, match="malformed"):
            store.tokens()  # the first rows come, then the broken page
    finally:
        store.close()


def test_a_database_error_inside_a_transaction_leaves_it_as_a_store_error(backend: Installation) -> None:  # noqa: F811
    store = open_store(backend.config.store)
    engine_error = sqlite3.OperationalError if isinstance(store, SqliteStore) else psycopg.OperationalError
    try:
        with pytest.raises(StoreError, match="disk I/O error"), store.transaction():
            raise engine_error("disk I/O error")
        assert store.users() == []  # and the store still works
    finally:
        store.close()


def test_a_lost_connection_at_commit_is_a_store_error(pg_database: Any, tmp_path: Path) -> None:
    """PostgreSQL: the server ends the session while a transaction is open; its COMMIT fails (nothing is known of its
    outcome, so nothing may be answered from it) and the store says the connection is gone."""
    from .storekit import make_installation

    inst = make_installation(tmp_path, pg_database)
    store = open_store(inst.config.store)
    try:
        with pytest.raises(StoreError, match="unavailable"), store.transaction():
            store.add_user("alice", email=None, phone=None, password_hash=None, now=0.0)
            with pg_database.connect(autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                              "AND pid <> pg_backend_pid()", (pg_database.dbname,))
        assert isinstance(store, PostgresStore) and store.broken
    finally:
        store.close()
    with contextlib.closing(open_store(inst.config.store)) as again:
        assert again.users() == []  # the transaction the connection lost was rolled back


def _event(when: float, **fields: Any) -> SessionEvent:
    return SessionEvent("vpn", "s1", when, **fields)


def test_the_accounting_rules_decide_without_a_database() -> None:
    start = sessionrules.on_start(None, _event(100.0, user="alice", input_octets=5))
    assert start.result is SessionWrite.RECORDED and start.insert is not None and start.update is None
    row: SessionRow = start.insert
    assert (row.start_time, row.status, row.input_octets) == (100.0, "active", 5)
    # a late Interim-Update changes nothing; one from before the start is about an earlier session
    assert sessionrules.on_update(row, _event(100.0, input_octets=3)).result is SessionWrite.REPEATED
    assert sessionrules.on_update(row, _event(99.0, input_octets=9)).result is SessionWrite.STALE
    stop = sessionrules.on_stop(row, _event(160.0, input_octets=50, terminate_cause="User-Request"))
    assert stop.result is SessionWrite.RECORDED and stop.update is not None
    assert (stop.update.stop_time, stop.update.status, stop.update.input_octets) == (160.0, "stopped", 50)
    assert sessionrules.on_stop(stop.update, _event(160.0)).result is SessionWrite.REPEATED
    # a Stop whose Start was lost records the whole session, started session_time before it
    lost = sessionrules.on_stop(None, _event(200.0, session_time=60))
    assert lost.insert is not None and lost.insert.start_time == 140.0
