"""The few SQL fragments that differ between engines; everything else in the aggregates' SQL is written once.

The statements are written with `?` placeholders, the reserved column names quoted ("user", "window"), ids given back
by `RETURNING id`, no `WHERE 1`, `tokens.active` an integer: SQL that SQLite and PostgreSQL both read. A backend
builds each aggregate's statements once, at import, from its `Dialect`. For PostgreSQL (psycopg 3) the fragments would
be: placeholder "%s", any_of "{column} = ANY(?)" with a list as its parameter, greatest "GREATEST", is_same
"IS NOT DISTINCT FROM", set_json "jsonb_set(coalesce({column}, '{{}}')::jsonb, ?, to_jsonb(?))::text" with the path
as a text array, and lock_users " FOR UPDATE OF u" (there the write lock is the user's row, not the whole database).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["SQLITE", "Dialect", "SqliteDialect"]


class Dialect:
    """An engine's fragments, as class attributes of a subclass (plain classes: the PAM login imports this)."""

    name: str
    placeholder: str  # how the engine's driver marks a parameter
    any_of: str  # "{column} matches one of a list given as one parameter", with {column}
    greatest: str  # the function giving the larger of two values
    is_same: str  # equality that holds for two NULLs
    set_json: str  # {column} (a JSON object as text) with one key set: parameters path, value
    lock_users: str  # appended to the verification's read of its users: takes their write lock, where rows are locked

    def sql(self, text: str) -> str:
        """A statement written with `?` placeholders, in this dialect."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def list_param(self, values: Sequence[str]) -> Any:
        """The parameter of `any_of`, from the list."""
        raise NotImplementedError

    def json_path(self, key: str) -> Any:
        """The path parameter of `set_json`, from a key."""
        raise NotImplementedError


class SqliteDialect(Dialect):
    name = "sqlite"
    placeholder = "?"
    any_of = "{column} IN (SELECT value FROM json_each(?))"
    greatest = "max"
    is_same = "IS"
    set_json = "json_set(coalesce({column}, '{{}}'), ?, ?)"
    lock_users = ""  # BEGIN IMMEDIATE took the whole database's write lock already

    def list_param(self, values: Sequence[str]) -> Any:
        return json.dumps(list(values))

    def json_path(self, key: str) -> Any:
        return f"$.{key}"


SQLITE = SqliteDialect()
