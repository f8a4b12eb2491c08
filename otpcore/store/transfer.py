"""Copying a whole store into an empty one (`otp-admin store copy`): SQLite to PostgreSQL and back.

Every table, row for row, with its ids: a token's secret is sealed bound to its id and its owner's, so the sealed
values are copied as they are and open with the same key in the copy. The source is read in one snapshot (a
consistent state even while servers write to it), the target written in one transaction: all or nothing. Both stores
are at this program's schema version once opened (each migrates on opening), so the copy is of that version.
Large tables are read in pages along their primary key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import StoreError
from .rows import AuditRow, ChallengeRow, SessionRow, TokenRow, UserRow
from .sqlcore import Params, SqlStore

__all__ = ["TABLES", "copy_store", "row_counts"]

PAGE = 5000  # rows read at a time
_RESERVED = {"user", "window"}


def _columns(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f'"{name}"' if name in _RESERVED else name for name in names)


# (table, columns, primary key), parents before children
TABLES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("users", _columns(UserRow._fields), "id"),
    ("tokens", _columns(TokenRow._fields), "id"),
    ("challenges", _columns(ChallengeRow._fields), "state"),
    ("audit", _columns(AuditRow._fields), "id"),
    ("sessions", _columns(SessionRow._fields), "id"),
    ("throttle", ("key", "level", "updated"), "key"),
)
IDENTITY_TABLES = ("users", "tokens", "audit", "sessions")  # ids made by the store: its next id follows the copy's


def row_counts(store: SqlStore) -> dict[str, int]:
    out = {}
    for table, _, _ in TABLES:
        row = store._one(f"SELECT count(*) FROM {table}")
        out[table] = int(row[0]) if row else 0
    return out


def copy_store(source: SqlStore, target: SqlStore) -> dict[str, int]:
    """Copy every row of `source` into `target`, which must hold none; returns the rows copied per table."""
    held = {table: n for table, n in row_counts(target).items() if n}
    if held:
        raise StoreError("the target store is not empty (" + ", ".join(f"{n} {t}" for t, n in held.items()) +
                         "): a copy goes into a new, empty store only")
    copied = dict.fromkeys((table for table, _, _ in TABLES), 0)
    with _snapshot(source), target.transaction():
        for table, columns, key in TABLES:
            insert = target.dialect.sql(f"INSERT INTO {table} ({', '.join(columns)}) "
                                        f"VALUES ({', '.join('?' * len(columns))})")
            for page in _pages(source, table, columns, key):
                target._many(insert, page)
                copied[table] += len(page)
        if target.dialect.follow_ids:
            for table in IDENTITY_TABLES:
                target._one(target.dialect.follow_ids.format(table=table))
    return copied


def _pages(store: SqlStore, table: str, columns: tuple[str, ...], key: str) -> Iterator[list[Params]]:
    at = columns.index(key)
    first = store.dialect.sql(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key} LIMIT {PAGE}")
    after = store.dialect.sql(f"SELECT {', '.join(columns)} FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT {PAGE}")
    page = store._all(first)
    while page:
        yield page
        if len(page) < PAGE:
            return
        page = store._all(after, (page[-1][at],))


@contextmanager
def _snapshot(store: SqlStore) -> Iterator[None]:
    """One consistent view of the store for the reads inside, whatever is written meanwhile (read only)."""
    store._run(store.dialect.begin_snapshot)
    try:
        yield
    finally:
        store._rollback()
