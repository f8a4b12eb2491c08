"""The few SQL fragments that differ between engines; everything else in the aggregates' SQL is written once.

The statements are written with `?` placeholders, the reserved column names quoted ("user", "window"), ids given back
by `RETURNING id` and no `WHERE 1`: SQL that SQLite and PostgreSQL both read. A backend builds each aggregate's
statements once, at import, from its `Dialect`. For PostgreSQL (psycopg 3) the fragments would be: placeholder "%s",
any_of "{column} = ANY(?)" with a list as its parameter, greatest "GREATEST", is_same "IS NOT DISTINCT FROM",
set_json "jsonb_set(coalesce({column}, '{{}}')::jsonb, ?, to_jsonb(?))::text" with the path as a text array, and
lock_users " FOR UPDATE OF u" (there the write lock is the user's row, not the whole database).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

__all__ = ["SQLITE", "Dialect"]


class Dialect(NamedTuple):  # a NamedTuple: a tenth of a dataclass's import cost, on the PAM login's path
    name: str
    placeholder: str  # how the engine's driver marks a parameter
    any_of: str  # "{column} matches one of a list given as one parameter", with {column}
    list_param: Callable[[Sequence[str]], Any]  # that parameter, from the list
    greatest: str  # the larger of two values
    is_same: str  # equality that holds for two NULLs
    set_json: str  # {column} (a JSON object as text) with one key set: parameters path, value
    json_path: Callable[[str], Any]  # the path parameter of set_json, from a key
    lock_users: str  # appended to the verification's read of its users: takes their write lock, where rows are locked

    def sql(self, text: str) -> str:
        """A statement written with `?` placeholders, in this dialect."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    any_of="{column} IN (SELECT value FROM json_each(?))",
    list_param=json.dumps,
    greatest="max",
    is_same="IS",
    set_json="json_set(coalesce({column}, '{{}}'), ?, ?)",
    json_path="$.{}".format,
    lock_users="",  # BEGIN IMMEDIATE took the whole database's write lock already
)
