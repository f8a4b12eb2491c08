"""The few SQL fragments that differ between engines; everything else in the aggregates' SQL is written once.

The statements are written with `?` placeholders, the reserved column names quoted ("user", "window"), ids given back
by `RETURNING id`, no `WHERE 1`, `tokens.active` an integer: SQL that SQLite and PostgreSQL both read. A backend
builds each aggregate's statements once, at import, from its `Dialect`.

Where the write lock is: SQLite's transaction takes the whole database's at BEGIN; PostgreSQL has row locks only, so
a transaction locks the rows it decides on before it reads them (`lock_users`: the user's row, which stands for its
tokens, failure state and challenges), and what no row lock covers is serialised on a key (`lock_key`: an accounting
session).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["POSTGRES", "SQLITE", "Dialect", "PostgresDialect", "SqliteDialect"]


class Dialect:
    """An engine's fragments, as class attributes of a subclass (plain classes: the PAM login imports this)."""

    name: str
    placeholder: str  # how the engine's driver marks a parameter
    any_of: str  # "{column} matches one of a list given as one parameter", with {column}
    greatest: str  # the function giving the larger of two values
    is_same: str  # equality that holds for two NULLs
    set_json: str  # {column} (a JSON object as text) with one key set: parameters path, value
    lock_users: str  # appended to a transaction's read of users (aliased u): locks their rows, where rows are locked
    lock_key: str  # a statement taking a lock on one text key until the transaction ends ("": the BEGIN took it)
    active_tokens_join: str  # joins each user u with its active tokens t (none: NULLs)
    begin_snapshot: str  # begins a read-only transaction whose reads all see one state of the store
    follow_ids: str  # a table's ({table}) next generated id made to follow the ids written into it ("": it does)

    def sql(self, text: str) -> str:
        """A statement written with `?` placeholders, in this dialect."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def list_param(self, values: Sequence[str]) -> Any:
        """The parameter of `any_of`, from the list."""
        raise NotImplementedError

    def json_path(self, key: str) -> Any:
        """The path parameter of `set_json`, from a key."""
        raise NotImplementedError

    def json_value(self, value: Any) -> Any:
        """The value parameter of `set_json`."""
        return value


class SqliteDialect(Dialect):
    name = "sqlite"
    placeholder = "?"
    any_of = "{column} IN (SELECT value FROM json_each(?))"
    greatest = "max"
    is_same = "IS"
    set_json = "json_set(coalesce({column}, '{{}}'), ?, ?)"
    lock_users = ""  # BEGIN IMMEDIATE took the whole database's write lock already
    lock_key = ""
    active_tokens_join = "LEFT JOIN tokens t ON t.user_id = u.id AND t.active = 1"
    begin_snapshot = "BEGIN"  # in WAL mode a read transaction sees the store as of its first read
    follow_ids = ""  # an INTEGER PRIMARY KEY's next id is the largest plus one

    def list_param(self, values: Sequence[str]) -> Any:
        return json.dumps(list(values))

    def json_path(self, key: str) -> Any:
        return f"$.{key}"


class PostgresDialect(Dialect):
    """PostgreSQL (its driver marks parameters the Python DB-API "format" way)."""

    name = "postgresql"
    placeholder = "%s"
    any_of = "{column} = ANY(?::text[])"
    greatest = "GREATEST"
    is_same = "IS NOT DISTINCT FROM"
    set_json = "jsonb_set(coalesce({column}, '{{}}')::jsonb, ?::text[], ?::jsonb)::text"
    # Rows are locked in the order the statement returns them: users.py sorts a group's by id, so that two groups
    # never wait for each other in a circle.
    lock_users = " FOR UPDATE OF u"
    lock_key = "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))"
    # Each user's tokens looked up by the index on user_id, whatever the planner knows of the tables: a join it is
    # free to plan read every token of the store per group while the statistics were missing (right after an import).
    # OFFSET 0 keeps the subquery from being merged into a plain join.
    active_tokens_join = ("LEFT JOIN LATERAL (SELECT * FROM tokens WHERE user_id = u.id AND active = 1 OFFSET 0) t "
                          "ON true")
    begin_snapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    follow_ids = ("SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) "
                  "FROM {table}")

    def list_param(self, values: Sequence[str]) -> Any:
        return list(values)

    def json_path(self, key: str) -> Any:
        return [key]

    def json_value(self, value: Any) -> Any:
        return json.dumps(value)


SQLITE = SqliteDialect()
POSTGRES = PostgresDialect()
