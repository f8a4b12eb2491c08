"""Stores made by earlier versions are brought up to date by the next program that opens them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import sqlite_utils

from otpcore import oath
from otpcore.errors import SealError
from otpcore.reseal import row_identity
from otpcore.seal import create_key_file, legacy_token_identity, load_key_file
from otpcore.store import SCHEMA_VERSION
from otpcore.store.sqlite import SqliteStore
from otpcore.store.sqlite.schema import MIGRATIONS

from .helpers import SEED20, Cli


def old_store(path: Path, version: int) -> sqlite3.Connection:
    """A store as schema `version` made it, by the migrations of that time."""
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for target, step in MIGRATIONS:
        if target <= version:
            step(db)
    conn.execute(f"PRAGMA user_version = {version}")
    return conn


def test_a_schema_2_store_loses_the_audit_index_by_user(tmp_path: Path) -> None:
    path = tmp_path / "otp.sqlite"
    old_store(path, 2).close()
    SqliteStore.open(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'idx_audit_user_time'").fetchall()
    conn.close()


def schema_3_with_two_users(cli: Cli) -> None:
    """alice with a TOTP token on SEED20, sealed the schema-3 way (bound to the token id only), and bob."""
    create_key_file(cli.key)
    sealer = load_key_file(cli.key)
    conn = old_store(cli.store, 3)
    conn.execute("INSERT INTO users (id, name, failures, created) VALUES (1, 'alice', 0, 0), (2, 'bob', 0, 0)")
    conn.execute("INSERT INTO tokens (id, user_id, type, secret, created) VALUES (1, 1, 'totp', ?, 0)",
                 (sealer.seal(SEED20, legacy_token_identity(1)),))
    conn.close()


def test_schema_3_secrets_are_resealed_bound_to_owner_and_parameters(cli: Cli) -> None:
    schema_3_with_two_users(cli)
    now = time.time()
    assert "code accepted" in cli.ok("token", "verify", "alice", oath.totp(SEED20, now))
    conn = sqlite3.connect(cli.store)
    version, seal, sealed = conn.execute("SELECT (SELECT user_version FROM pragma_user_version), seal, secret "
                                         "FROM tokens WHERE id = 1").fetchone()
    conn.close()
    assert (version, seal) == (SCHEMA_VERSION, 2)
    sealer = load_key_file(cli.key)
    with pytest.raises(SealError):
        sealer.open(sealed, legacy_token_identity(1))  # no longer bound the old way
    opened = SqliteStore.open(cli.store)
    token = opened.require_token(1)
    opened.close()
    assert sealer.open(sealed, row_identity(token)) == SEED20


def test_a_token_given_to_another_user_does_not_open(cli: Cli) -> None:
    """The attack: with write access to the store file but not the key, point alice's token at bob; bob then logged
    in with alice's codes."""
    schema_3_with_two_users(cli)
    cli.ok("init")  # any program with the key re-seals
    conn = sqlite3.connect(cli.store)
    conn.execute("UPDATE tokens SET user_id = 2 WHERE id = 1")
    conn.commit()
    conn.close()
    out = cli.run("token", "verify", "bob", oath.totp(SEED20, time.time()))
    assert out.returncode == 1 and "code accepted" not in out.stdout
    assert "does not open" in out.stderr
    # and setting it back the old way (seal = 1) is refused too, not opened with the weaker binding
    conn = sqlite3.connect(cli.store)
    conn.execute("UPDATE tokens SET seal = 1 WHERE id = 1")
    conn.commit()
    conn.close()
    out = cli.run("token", "verify", "bob", oath.totp(SEED20, time.time()))
    assert out.returncode == 1 and "code accepted" not in out.stdout


def test_a_schema_4_audit_gets_a_source_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "otp.sqlite"
    conn = old_store(path, 4)
    conn.execute("INSERT INTO audit (time, user, door, client, result, reason) "
                 "VALUES (1, 'alice', 'radius', 'vpn', 'accept', 'ok')")
    conn.close()
    opened = SqliteStore.open(path)
    try:
        opened.audit(now=2, user="alice", door="pam", client="sshd:10.0.0.9", result="reject", reason="wrong_code",
                     source="10.0.0.9")
        rows = [(r.time, r.door, r.source, r.reason) for r in opened.audit_rows(user="alice")]
    finally:
        opened.close()
    assert rows == [(1, "radius", None, "ok"), (2, "pam", "10.0.0.9", "wrong_code")]


def test_users_of_a_schema_6_store_are_not_directory_users(tmp_path: Path) -> None:
    path = tmp_path / "otp.sqlite"
    conn = old_store(path, 6)
    conn.execute("INSERT INTO users (id, name, email, failures, created) VALUES (1, 'alice', 'a@example.org', 0, 0)")
    conn.close()
    store = SqliteStore.open(path)
    try:
        alice = store.require_user("alice")
        assert (alice.email, alice.directory) == ("a@example.org", 0)
        with store.transaction():
            store.add_user("bob", email=None, phone=None, password_hash=None, now=0, directory=True)
        assert store.require_user("bob").directory == 1
    finally:
        store.close()
