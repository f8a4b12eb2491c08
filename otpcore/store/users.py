"""Users: their profile, password hash and failure state, and the read every verification starts with (the user and
its active tokens in one query, or a whole group's users in one query, prefetched in its transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..errors import NotFoundError, StoreError
from ..policy import FailureState
from .dialect import Dialect
from .rows import TokenRow, UserRow
from .sqlcore import SqlStore, encodable
from .tokens import TOKEN_COLUMNS, token_row

__all__ = ["UserSql", "Users"]

_COLUMNS = ("id", "name", "email", "phone", "password_hash", "failures", "last_bad", "locked_at", "created",
            "lockouts", "oob_sends", "directory", "reply_group", "reply")
_COLS = ", ".join(_COLUMNS)
_SPLIT = len(_COLUMNS)  # where a joined row's token columns begin

_UserWithTokens = tuple[UserRow | None, list[TokenRow]]


class UserSql:
    """The users' statements in one dialect (made once: drivers find their prepared statement by the text)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        joined = (f"SELECT {', '.join('u.' + c for c in _COLUMNS)}, {', '.join('t.' + c for c in TOKEN_COLUMNS)} "
                  f"FROM users u {d.active_tokens_join}")
        self.by_name = q(f"SELECT {_COLS} FROM users u WHERE name = ?")
        self.by_id = q(f"SELECT {_COLS} FROM users u WHERE id = ?")
        # inside a transaction: the rows it decides on, locked until its end where rows are locked (PostgreSQL)
        self.by_name_locked = q(f"SELECT {_COLS} FROM users u WHERE name = ?{d.lock_users}")
        self.by_id_locked = q(f"SELECT {_COLS} FROM users u WHERE id = ?{d.lock_users}")
        self.every = q(f"SELECT {_COLS} FROM users ORDER BY name")
        self.with_tokens = q(f"{joined} WHERE u.name = ? ORDER BY t.id")
        self.many_with_tokens = q(f"{joined} WHERE {d.any_of.format(column='u.name')} ORDER BY u.id, t.id")
        # Where rows are locked, a transaction locks its users (several in id order: two groups never wait for each
        # other in a circle) in a statement of its own, before reading them with their tokens: a read that waited
        # for a lock would see the other transaction's changes to the locked row, not to the tokens it joins.
        self.lock_name = q(f"SELECT u.id FROM users u WHERE name = ?{d.lock_users}") if d.lock_users else ""
        self.lock_names = q(f"SELECT u.id FROM users u WHERE {d.any_of.format(column='u.name')} ORDER BY u.id"
                            f"{d.lock_users}") if d.lock_users else ""
        self.insert = q("INSERT INTO users (name, email, phone, password_hash, failures, created, directory) "
                        "VALUES (?, ?, ?, ?, 0, ?, ?) RETURNING id")
        self.set_contact = q("UPDATE users SET email = coalesce(?, email), phone = coalesce(?, phone) WHERE id = ?")
        self.replace_contact = q("UPDATE users SET email = ?, phone = ? WHERE id = ?")
        self.set_password_hash = q("UPDATE users SET password_hash = ? WHERE id = ?")
        self.delete_challenges = q("DELETE FROM challenges WHERE user_id = ?")
        self.delete_reversible = q("DELETE FROM reversible_passwords WHERE user_id = ?")
        self.delete_tokens = q("DELETE FROM tokens WHERE user_id = ?")
        self.delete = q("DELETE FROM users WHERE id = ?")
        self.set_failures = q("UPDATE users SET failures = ?, last_bad = ?, locked_at = ?, lockouts = ? WHERE id = ?")
        self.set_oob_sends = q("UPDATE users SET oob_sends = ? WHERE id = ?")
        self.set_reply = q("UPDATE users SET reply_group = ?, reply = ? WHERE id = ?")


class Users(SqlStore):
    _user_sql: ClassVar[UserSql]

    def user(self, name: str) -> UserRow | None:
        if not encodable(name):
            return None  # lone surrogates from undecodable input: no such user can exist
        row = self._one(self._user_sql.by_name_locked if self._depth else self._user_sql.by_name, (name,))
        return UserRow._make(row) if row else None

    def user_with_tokens(self, name: str) -> _UserWithTokens:
        """The user and its active tokens (oldest first), in one query: a verification's first read."""
        if self._prefetched:
            prefetched = self._prefetched.pop(name, None)
            if prefetched is not None:
                return prefetched
        if not encodable(name):
            return None, []
        rows = self._locked_all(self._user_sql.lock_name, self._user_sql.with_tokens, (name,))
        if not rows:
            return None, []
        return UserRow._make(rows[0][:_SPLIT]), [token_row(r[_SPLIT:]) for r in rows if r[_SPLIT] is not None]

    def users_with_tokens(self, names: Sequence[str]) -> dict[str, _UserWithTokens]:
        """user_with_tokens() of several users, in one query (a query costs more than the rows it reads)."""
        out: dict[str, _UserWithTokens] = {name: (None, []) for name in names}
        wanted = self.dialect.list_param([name for name in out if encodable(name)])
        for row in self._locked_all(self._user_sql.lock_names, self._user_sql.many_with_tokens, (wanted,)):
            name = row[1]
            entry = out.get(name)
            if entry is None:  # not asked for (SQLite compares as its JSON parser reads): not a match
                continue
            if entry[0] is None:
                entry = out[name] = (UserRow._make(row[:_SPLIT]), entry[1])
            if row[_SPLIT] is not None:
                entry[1].append(token_row(row[_SPLIT:]))
        return out

    def prefetch(self, names: Sequence[str]) -> None:
        """Inside a transaction, for a batch of verifications: read these users and their tokens now, in one query.
        user_with_tokens() then takes each from here once; a second read of a user (which may follow a write of its
        rows) goes to the store. So each verification must read its user before writing its rows, and write no
        other user's: true of login(). Forgotten at the end of the transaction."""
        if not self._depth:
            raise StoreError("prefetch outside a transaction")
        self._prefetched = self.users_with_tokens(names)
        self._group = True
        self._prefetched_ids = {}
        for name, (row, tokens) in self._prefetched.items():
            if row is not None:
                self._prefetched_ids["user", row.id] = name
                for token in tokens:
                    self._prefetched_ids["token", token.id] = name

    def user_by_id(self, user_id: int) -> UserRow | None:
        row = self._one(self._user_sql.by_id_locked if self._depth else self._user_sql.by_id, (user_id,))
        return UserRow._make(row) if row else None

    def require_user(self, name: str) -> UserRow:
        user = self.user(name)
        if user is None:
            raise NotFoundError(f"no such user: {name}")
        return user

    def users(self) -> list[UserRow]:
        return [UserRow._make(r) for r in self._all(self._user_sql.every)]

    def add_user(
        self, name: str, *, email: str | None, phone: str | None, password_hash: str | None, now: float,
        directory: bool = False,
    ) -> int:
        if self.user(name) is not None:
            raise StoreError(f"user already exists: {name}")
        self._prefetched.pop(name, None)  # prefetched as unknown
        rows = self._all(self._user_sql.insert, (name, email, phone, password_hash, now, int(directory)))
        return int(rows[0][0])

    def update_user_contact(self, user_id: int, *, email: str | None, phone: str | None) -> None:
        self._changed("user", user_id)
        self._run(self._user_sql.set_contact, (email, phone, user_id))

    def set_user_contact(self, user_id: int, *, email: str | None, phone: str | None) -> None:
        """Both addresses as given (None clears one)."""
        self._changed("user", user_id)
        self._run(self._user_sql.replace_contact, (email, phone, user_id))

    def set_password_hash(self, user_id: int, password_hash: str | None) -> None:
        self._changed("user", user_id)
        self._run(self._user_sql.set_password_hash, (password_hash, user_id))

    def delete_user(self, user_id: int) -> None:
        self._changed("user", user_id)
        sql = self._user_sql
        for statement in (sql.delete_challenges, sql.delete_reversible, sql.delete_tokens, sql.delete):
            self._run(statement, (user_id,))

    def set_failure_state(self, user_id: int, state: FailureState) -> None:
        self._changed("user", user_id)
        self._run(self._user_sql.set_failures,
                  (state.failures, state.last_bad, state.locked_at, state.lockouts, user_id))

    def set_oob_sends(self, user_id: int, sends: str | None) -> None:
        self._changed("user", user_id)
        self._run(self._user_sql.set_oob_sends, (sends, user_id))

    def set_user_reply(self, user_id: int, *, group: str | None, attributes: str | None) -> None:
        self._changed("user", user_id)
        self._run(self._user_sql.set_reply, (group, attributes, user_id))
