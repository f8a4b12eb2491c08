"""The sealed store: sealing, file modes, no secret at rest, compare-and-set, schema version, passwords. What is not
about SQLite's file runs against every backend (storekit.backend)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from otpcore import oath
from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import load_config
from otpcore.errors import SealError, StoreError
from otpcore.passwords import hash_password, verify_password
from otpcore.reseal import row_identity
from otpcore.seal import Sealer, create_key_file, load_key_file, token_identity
from otpcore.store import SCHEMA_VERSION, open_store
from otpcore.store.postgres.backend import PostgresStore
from otpcore.store.sqlite import SqliteStore
from tests.kit.postgres import Database

from .helpers import SEED20, SEED32, SEED64, Installation, write_config
from .storekit import backend, make_installation  # noqa: F401 (backend: the fixture)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def secret_forms(secret: bytes) -> list[bytes]:
    b32 = oath.encode_base32(secret)
    return [secret, b32.encode(), b32.lower().encode(), secret.hex().encode(), secret.hex().upper().encode()]


# -- sealing -----------------------------------------------------------------------------------------------------------


def ident(token_id: int, user_id: int = 1, digits: int = 6) -> bytes:
    return token_identity(token_id, user_id, "totp", "SHA1", digits, 30)


def test_seal_round_trip_bound_to_identity() -> None:
    sealer = Sealer(os.urandom(32))
    sealed = sealer.seal(SEED20, ident(1))
    assert SEED20 not in sealed
    assert sealer.open(sealed, ident(1)) == SEED20
    assert sealer.seal(SEED20, ident(1)) != sealed  # a fresh nonce each time
    with pytest.raises(SealError):
        sealer.open(sealed, ident(2))  # copied to another row, it does not open
    with pytest.raises(SealError):
        sealer.open(sealed, ident(1, user_id=2))  # the row given to another user
    with pytest.raises(SealError):
        sealer.open(sealed, ident(1, digits=8))  # the row's parameters changed
    with pytest.raises(SealError):
        Sealer(os.urandom(32)).open(sealed, ident(1))  # another key
    with pytest.raises(SealError):
        sealer.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), ident(1))  # tampered
    with pytest.raises(SealError):
        sealer.open(b"short", ident(1))


def test_sealer_rejects_wrong_key_length() -> None:
    with pytest.raises(SealError):
        Sealer(b"x" * 16)


def test_key_file_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        assert create_key_file(tmp_path / "sub" / "otp.key")
    finally:
        os.umask(old)
    key = tmp_path / "sub" / "otp.key"
    assert mode(key) == 0o600
    before = key.read_bytes()
    assert not create_key_file(key)  # idempotent: an existing key is never replaced
    assert key.read_bytes() == before
    load_key_file(key)


def test_key_file_accessible_by_others_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "otp.key"
    create_key_file(key)
    key.chmod(0o640)
    with pytest.raises(SealError, match="chmod 600"):
        load_key_file(key)


@pytest.mark.parametrize("content", [b"", b"not base64!\n", b"c2hvcnQ=\n"])
def test_bad_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    key = tmp_path / "otp.key"
    key.write_bytes(content)
    key.chmod(0o600)
    with pytest.raises(SealError):
        load_key_file(key)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(SealError, match="otp-admin init"):
        load_key_file(tmp_path / "nope.key")


# -- the store file ----------------------------------------------------------------------------------------------------


def test_store_and_key_created_0600_with_umask_0(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    old = os.umask(0)
    try:
        with Admin(config) as admin:
            admin.init()  # the store stays open: its -wal and -shm exist now
            for suffix in ("-wal", "-shm"):
                side = Path(f"{config.store.path}{suffix}")
                assert side.exists() and mode(side) == 0o600, suffix
    finally:
        os.umask(old)
    assert mode(config.store.path) == 0o600
    assert mode(config.store.key_file) == 0o600


def test_raw_store_and_wal_hold_no_secret(inst: Installation) -> None:
    secrets = [SEED20, SEED32, SEED64, os.urandom(20)]
    inst.add_user("alice", b"hunter2-password")
    with inst.admin() as admin:
        for i, secret in enumerate(secrets):
            admin.add_token("alice", TokenSpec(type="totp" if i % 2 else "hotp", secret=secret), now=0)
        new = admin.add_token("alice", TokenSpec(type="totp"), now=0)  # a random secret
        secrets.append(oath.decode_base32(new.secret_b32))
        # while the connection is open the latest pages are in the -wal file
        wal = Path(f"{inst.config.store.path}-wal").read_bytes()
        assert wal, "expected the recent writes in the WAL"
        raw = inst.config.store.path.read_bytes()
        for secret in secrets:
            for form in secret_forms(secret):
                assert form not in raw
                assert form not in wal
        assert b"hunter2-password" not in raw + wal
    raw = inst.config.store.path.read_bytes()  # checkpointed at close
    for secret in secrets:
        for form in secret_forms(secret):
            assert form not in raw
    # and the sealed values open with the key, bound to their rows
    with inst.admin() as admin:
        for token, _ in admin.tokens("alice"):
            assert token.secret is not None
            assert admin.sealer.open(token.secret, row_identity(token)) in secrets


def test_an_empty_database_is_not_initialised(pg_database: Database, tmp_path: Path) -> None:
    config = make_installation(tmp_path, pg_database).config.store
    with pg_database.connect(autocommit=True) as conn:
        conn.execute("DROP TABLE schema_version")
    with pytest.raises(StoreError, match=r"store postgresql://otp@127\.0\.0\.1:\d+/test_\d+ is not initialised "
                                         r"\(run `otp-admin init`\)"):
        open_store(config)


def test_open_missing_or_uninitialised_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="otp-admin init"):
        SqliteStore.open(tmp_path / "nope.sqlite")
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(StoreError, match="not initialised"):
        SqliteStore.open(empty)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        SqliteStore.open(garbage)


def test_schema_version_and_wal(inst: Installation) -> None:
    with sqlite3.connect(inst.config.store.path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"users", "tokens", "challenges", "audit"} <= tables


def test_audit_rows_only_append_and_are_still_found_by_user(inst: Installation) -> None:
    # Schema 3: no index by user, whose random page per verification cost a fifth of an accept.
    with sqlite3.connect(inst.config.store.path) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert "idx_audit_user_time" not in indexes and "idx_audit_time" in indexes
    inst.add_user("alice")
    inst.add_user("bob")
    with inst.admin() as admin:
        assert [r.user for r in admin.store.audit_rows(user="bob")] == ["bob"]


def test_newer_schema_is_refused(backend: Installation) -> None:  # noqa: F811
    store = open_store(backend.config.store)
    if isinstance(store, PostgresStore):
        store._run("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    else:
        store._run(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(backend.config.store)


def test_init_is_idempotent(backend: Installation) -> None:  # noqa: F811
    backend.add_user("alice")
    key = backend.config.store.key_file.read_bytes()
    with backend.admin() as admin:
        assert admin.init() == []
    assert backend.config.store.key_file.read_bytes() == key
    assert backend.user("alice").name == "alice"


def test_init_refuses_a_new_key_for_a_store_that_exists(backend: Installation) -> None:  # noqa: F811
    backend.config.store.key_file.unlink()
    with pytest.raises(SealError, match=r"key file not found: .*, but the store .* exists: restore its key"), \
            backend.admin() as admin:
        admin.init()
    assert not backend.config.store.key_file.exists()


# -- compare-and-set ---------------------------------------------------------------------------------------------------


def test_compare_and_set(backend: Installation) -> None:  # noqa: F811
    inst = backend
    inst.add_user("alice")
    totp_id = inst.add_token("alice", type="totp", secret=SEED20)
    hotp_id = inst.add_token("alice", type="hotp", secret=SEED20, counter=5)
    store = open_store(inst.config.store)
    try:
        assert store.advance_totp(totp_id, expected=-1, new_step=100, drift=1)
        assert not store.advance_totp(totp_id, expected=-1, new_step=101, drift=0)  # someone else moved it
        assert not store.advance_totp(totp_id, expected=100, new_step=100, drift=0)  # not newer
        assert not store.advance_totp(totp_id, expected=100, new_step=99, drift=0)
        assert store.advance_totp(totp_id, expected=100, new_step=101, drift=0)
        assert store.advance_hotp(hotp_id, expected=5, new_counter=7)
        assert not store.advance_hotp(hotp_id, expected=5, new_counter=8)
        assert not store.advance_hotp(hotp_id, expected=7, new_counter=7)
        token = store.require_token(totp_id)
        assert (token.last_step, token.drift) == (101, 0)
        assert store.require_token(hotp_id).counter == 7
    finally:
        store.close()


def test_failed_transaction_writes_nothing(backend: Installation) -> None:  # noqa: F811
    backend.add_user("alice")
    with backend.admin() as admin:
        with pytest.raises(StoreError):
            admin.add_user(UserSpec("alice"), now=0)
        assert len(admin.users()) == 1
        assert [r.reason for r in admin.store.audit_rows()] == ["user_added"]


# -- passwords ---------------------------------------------------------------------------------------------------------


def test_password_hash_is_argon2id_and_compares_bytes() -> None:
    h = hash_password(b"password")
    assert h.startswith("$argon2id$")
    assert verify_password(h, b"password")
    assert not verify_password(h, b"pass\xffword")
    assert not verify_password(h, b"Password")
    assert not verify_password(h, b"")
    assert not verify_password(None, b"password")
    assert not verify_password("not a hash", b"password")
