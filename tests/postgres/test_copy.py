"""`otp-admin store copy --to URL_OR_PATH`: a SQLite store moved to PostgreSQL and back, every table row for row
(sealed secrets as they are: the same key opens them), the copy working as the store of a new config; a non-empty
target refused, a copy that fails half-way leaving nothing, bad targets refused as bad usage."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from otpcore import oath
from otpcore.admin import Admin
from otpcore.config import load_config
from otpcore.store import ChallengeRow, SessionEvent, open_store
from otpcore.store.sqlcore import SqlStore
from otpcore.store.transfer import TABLES
from tests.core.helpers import Cli
from tests.kit.postgres import Database

from .kit import pg_config_lines

SEED = b"12345678901234567890"


def _config(folder: Path, store_lines: list[str], key: Path) -> Path:
    path = folder / "otp.toml"
    path.write_text("\n".join(["[store]", *store_lines, f'key_file = "{key}"', "", "[policy]", "max_failures = 3",
                               ""]))
    return path


def _sqlite_installation(folder: Path) -> Cli:
    folder.mkdir()
    cli = Cli(folder, _config(folder, [f'path = "{folder / "otp.sqlite"}"'], folder / "otp.key"))
    cli.ok("init")
    cli.ok("user", "add", "alice", "--email", "alice@example.org", "--password-stdin", stdin="s3cret\n")
    cli.ok("user", "add", "bob")
    cli.ok("token", "add", "alice", "--type", "hotp", "--secret", oath.encode_base32(SEED), "--qr", "none")
    cli.ok("token", "add", "bob", "--type", "totp", "--qr", "none")
    assert "code accepted" in cli.ok("token", "verify", "alice", oath.hotp(SEED, 0))
    assert cli.run("token", "verify", "bob", "000000").returncode == 1  # a failure counted, audited
    with Admin(load_config(cli.config)) as admin:
        store = admin.store
        store.add_challenge(ChallengeRow(b"\x00state\xff", 1, "vpn", None, 1.0, 2e9, b"\x01" * 16, 1))
        store.session_start(SessionEvent("vpn", "s1", 100.0, user="alice", input_octets=2**40))
        store.count_throttle_failure("radius:vpn", now=time.time(), rate=0.1)
    return cli


def _tables(config: Path) -> dict[str, list[tuple[Any, ...]]]:
    store = open_store(load_config(config).store)
    try:
        assert isinstance(store, SqlStore)
        return {table: [tuple(r) for r in store._all(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}")]
                for table, columns, key in TABLES}
    finally:
        store.close()


def test_sqlite_to_postgresql_and_back(tmp_path: Path, pg_database: Database) -> None:
    cli = _sqlite_installation(tmp_path / "sqlite")
    before = _tables(cli.config)
    assert all(before.values()), before  # every table has rows to copy
    pg_folder = tmp_path / "pg"
    pg_folder.mkdir()
    pg_lines = pg_config_lines(pg_folder, pg_database)
    out = cli.ok("store", "copy", "--to", pg_database.url, "--password-file", str(pg_folder / "db.password"))
    assert out.startswith(f"copied to {pg_database.url}: 2 users, 2 tokens, 1 challenges, ")

    pg = Cli(pg_folder, _config(pg_folder, pg_lines, cli.key))  # the same key: the sealed secrets open
    assert _tables(pg.config) == before
    assert "code accepted" in pg.ok("token", "verify", "alice", oath.hotp(SEED, 1))
    assert pg.run("token", "verify", "alice", oath.hotp(SEED, 0)).returncode == 1  # used before the move
    pg.ok("user", "add", "carol")  # new ids follow the copied ones
    pg.ok("token", "add", "carol", "--type", "totp", "--qr", "none")

    back = tmp_path / "back.sqlite"
    assert pg.ok("store", "copy", "--to", str(back)).startswith(f"copied to {back}: 3 users, 3 tokens")
    again = tmp_path / "again"
    again.mkdir()
    copy = Cli(again, _config(again, [f'path = "{back}"'], cli.key))
    assert _tables(copy.config) == _tables(pg.config)
    assert back.stat().st_mode & 0o777 == 0o600
    assert "code accepted" in copy.ok("token", "verify", "alice", oath.hotp(SEED, 2))


def test_a_target_that_is_not_empty_is_refused(tmp_path: Path, pg_database: Database) -> None:
    cli = _sqlite_installation(tmp_path / "sqlite")
    password = tmp_path / "db.password"
    password.write_text(pg_database.password)
    cli.ok("store", "copy", "--to", pg_database.url, "--password-file", str(password))
    copied = tmp_path / "pg"
    copied.mkdir()
    config = _config(copied, pg_config_lines(copied, pg_database), cli.key)
    before = _tables(config)
    out = cli.run("store", "copy", "--to", pg_database.url, "--password-file", str(password))
    assert out.returncode == 1 and out.stderr.startswith("otp-admin: the target store is not empty (2 users, ")
    assert len(out.stderr.splitlines()) == 1
    assert _tables(config) == before


def test_a_copy_that_fails_half_way_leaves_nothing(tmp_path: Path, pg_database: Database) -> None:
    cli = _sqlite_installation(tmp_path / "sqlite")
    target = tmp_path / "pg"
    target.mkdir()
    config = _config(target, pg_config_lines(target, pg_database), cli.key)
    Cli(target, config).ok("init")  # with the key already there: the schema only
    with pg_database.connect(autocommit=True) as conn:  # the sessions, copied after users, tokens and the audit, fail
        conn.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN RAISE EXCEPTION 'disk full, say'; END$$")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION refuse()")
    out = cli.run("store", "copy", "--to", pg_database.url, "--password-file", str(target / "db.password"))
    assert out.returncode == 1 and "disk full, say" in out.stderr, out.stderr
    assert all(rows == [] for rows in _tables(config).values())


@pytest.mark.parametrize(("to", "message"), [
    ("ftp://example.org/otp", "--to: not a postgresql:// URL nor a file"),
    ("{store}", "--to names the configured store itself"),
])
def test_bad_targets_are_bad_usage(tmp_path: Path, to: str, message: str) -> None:
    cli = _sqlite_installation(tmp_path / "sqlite")
    out = cli.run("store", "copy", "--to", to.format(store=cli.store))
    assert out.returncode == 2 and message in out.stderr, out.stderr
    out = cli.run("store", "copy", "--to", str(tmp_path / "x.sqlite"), "--password-file", "p")
    assert out.returncode == 2 and "--password-file: only with a postgresql:// URL" in out.stderr
    assert not (tmp_path / "x.sqlite").exists()
