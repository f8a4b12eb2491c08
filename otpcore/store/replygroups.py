"""Reply groups: groups of users and the reply attributes an Accept of theirs carries (otpcore.replies). A user's
membership is its row's `reply_group` (users.py); a group with members cannot be deleted (a foreign key)."""

from __future__ import annotations

from typing import ClassVar

from .dialect import Dialect
from .rows import ReplyGroupRow
from .sqlcore import SqlStore

__all__ = ["ReplyGroupSql", "ReplyGroups"]

_COLS = "name, attributes, created, updated"


class ReplyGroupSql:
    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.by_name = q(f"SELECT {_COLS} FROM reply_groups WHERE name = ?")
        self.every = q(f"SELECT {_COLS} FROM reply_groups ORDER BY name")
        self.upsert = q("INSERT INTO reply_groups (name, attributes, created, updated) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET attributes = excluded.attributes, updated = excluded.updated")
        self.delete = q("DELETE FROM reply_groups WHERE name = ?")
        self.members = q("SELECT name FROM users WHERE reply_group = ? ORDER BY name")


class ReplyGroups(SqlStore):
    _reply_group_sql: ClassVar[ReplyGroupSql]

    def reply_group(self, name: str) -> ReplyGroupRow | None:
        row = self._one(self._reply_group_sql.by_name, (name,))
        return ReplyGroupRow._make(row) if row else None

    def reply_groups(self) -> list[ReplyGroupRow]:
        return [ReplyGroupRow._make(r) for r in self._all(self._reply_group_sql.every)]

    def set_reply_group(self, name: str, attributes: str, now: float) -> None:
        """Make the group, or replace its attributes."""
        self._run(self._reply_group_sql.upsert, (name, attributes, now, now))

    def delete_reply_group(self, name: str) -> None:
        self._run(self._reply_group_sql.delete, (name,))

    def reply_group_members(self, name: str) -> list[str]:
        return [r[0] for r in self._all(self._reply_group_sql.members, (name,))]
