"""`otp-admin store copy --to URL_OR_PATH`: everything in the configured store copied into a new, empty one, to move
from SQLite to PostgreSQL (or back). All or nothing; the sealed secrets are copied as they are, so the copy needs
the same key file."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from otpcore.admin import Admin
from otpcore.config import Config, StoreConfig
from otpcore.errors import InputError, StoreError
from otpcore.store import open_store
from otpcore.store.sqlcore import SqlStore
from otpcore.store.transfer import copy_store

__all__ = ["register"]


def register(store: Any) -> None:
    s = store.add_parser("copy", help="copy everything into a new, empty store (SQLite or PostgreSQL)")
    s.add_argument("--to", required=True, metavar="URL_OR_PATH",
                   help="a postgresql:// URL or the path of a SQLite file; its schema is created if missing")
    s.add_argument("--password-file", help="the PostgreSQL password of --to (default: libpq's, e.g. ~/.pgpass)")
    s.set_defaults(handler=copy)


def target_config(config: Config, to: str, password_file: str | None) -> StoreConfig:
    """The store --to names, with the configured key (the secrets stay sealed with it)."""
    if not to:
        raise InputError("--to: empty")
    if to.startswith(("postgresql://", "postgres://")):
        return dataclasses.replace(config.store, url=to,
                                   password_file=Path(password_file) if password_file else None)
    if password_file:
        raise InputError("--password-file: only with a postgresql:// URL")
    if "://" in to:
        raise InputError(f"--to: not a postgresql:// URL nor a file: {to}")
    return dataclasses.replace(config.store, path=Path(to).absolute(), url=None, password_file=None)


def copy(args: argparse.Namespace, config: Config) -> int:
    target = target_config(config, args.to, args.password_file)
    if target.where == config.store.where:
        raise InputError("--to names the configured store itself")
    new_file = target.url is None and not target.path.exists()
    with Admin(config) as admin:
        source = admin.store  # opened with its key: a store the key does not fit is refused here
        try:
            copied = _copy(source, target)
        except BaseException:
            if new_file:  # all or nothing: no half-made file left behind
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        Path(f"{target.path}{suffix}").unlink()
            raise
    print(f"copied to {target.where}: " + ", ".join(f"{n} {table}" for table, n in copied.items()))
    return 0


def _copy(source: Any, target_config: StoreConfig) -> dict[str, int]:
    target = open_store(target_config, create=True)
    try:
        if not (isinstance(source, SqlStore) and isinstance(target, SqlStore)):
            raise StoreError("store copy needs two SQL stores")
        return copy_store(source, target)
    finally:
        target.close()
