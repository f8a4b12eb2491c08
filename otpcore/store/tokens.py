"""Tokens: their parameters, sealed secrets, and the compare-and-set advance of counters and time steps."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import NotFoundError
from .dialect import Dialect
from .rows import TokenRow
from .sqlcore import Params, SqlStore

__all__ = ["TOKEN_COLUMNS", "TokenSql", "Tokens", "token_row"]

TOKEN_COLUMNS = ("id", "user_id", "type", "algorithm", "digits", "period", "t0", "counter", "last_step", "drift",
                 '"window"', "secret", "issuer", "active", "created", "options", "seal")
_COLS = ", ".join(TOKEN_COLUMNS)


class TokenSql:
    """The tokens' statements in one dialect."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.by_id = q(f"SELECT {_COLS} FROM tokens WHERE id = ?")
        self.active_of_user = q(f"SELECT {_COLS} FROM tokens WHERE user_id = ? AND active = 1 ORDER BY id")
        self.of_user = q(f"SELECT {_COLS} FROM tokens WHERE user_id = ? ORDER BY id")
        self.active = q(f"SELECT {_COLS} FROM tokens WHERE active = 1 ORDER BY id")
        self.every = q(f"SELECT {_COLS} FROM tokens ORDER BY id")
        self.sealed_before = q(f"SELECT {_COLS} FROM tokens WHERE seal < ? AND secret IS NOT NULL ORDER BY id")
        self.set_secret = q("UPDATE tokens SET secret = ?, seal = 2 WHERE id = ?")
        self.set_active = q("UPDATE tokens SET active = ? WHERE id = ?")
        self.delete_challenges = q("DELETE FROM challenges WHERE token_id = ?")
        self.delete = q("DELETE FROM tokens WHERE id = ?")
        self.advance_hotp = q("UPDATE tokens SET counter = ? WHERE id = ? AND counter = ? AND ? > counter")
        self.advance_totp = q("UPDATE tokens SET last_step = ?, drift = ? WHERE id = ? AND last_step = ? "
                              "AND ? > last_step")
        self.set_option = q(f"UPDATE tokens SET options = {d.set_json.format(column='options')} WHERE id = ?")
        self.dialect = d

    def insert(self, columns: list[str]) -> str:
        return self.dialect.sql(f"INSERT INTO tokens ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                                "RETURNING id")

    def update(self, columns: list[str]) -> str:
        assignments = ", ".join(f"{column} = ?" for column in columns)
        return self.dialect.sql(f"UPDATE tokens SET {assignments} WHERE id = ?")


def token_row(row: Params) -> TokenRow:
    values = list(row)
    values[13] = bool(values[13])
    return TokenRow._make(values)


class Tokens(SqlStore):
    _token_sql: ClassVar[TokenSql]

    def token(self, token_id: int) -> TokenRow | None:
        row = self._one(self._token_sql.by_id, (token_id,))
        return token_row(row) if row else None

    def require_token(self, token_id: int) -> TokenRow:
        token = self.token(token_id)
        if token is None:
            raise NotFoundError(f"no such token: {token_id}")
        return token

    def tokens(self, user_id: int | None = None, *, active_only: bool = False) -> list[TokenRow]:
        sql = self._token_sql
        if user_id is not None:
            rows = self._all(sql.active_of_user if active_only else sql.of_user, (user_id,))
        else:
            rows = self._all(sql.active if active_only else sql.every)
        return [token_row(r) for r in rows]

    def add_token(self, user_id: int, fields: dict[str, Any], now: float) -> int:
        """A new token row; its secret (if any) is set with set_token_secret once the row's id is known."""
        self._changed("user", user_id)
        fields = {"seal": 2, **fields}
        columns = ["user_id", "created", *(_quoted(name) for name in fields)]
        rows = self._all(self._token_sql.insert(columns), (user_id, now, *fields.values()))
        return int(rows[0][0])

    def update_token(self, token_id: int, fields: dict[str, Any]) -> None:
        """Set columns of a token (names from the caller's code, never from input)."""
        self._changed("token", token_id)
        self._run(self._token_sql.update([_quoted(name) for name in fields]), (*fields.values(), token_id))

    def set_token_secret(self, token_id: int, sealed: bytes) -> None:
        """The sealed secret, bound to the row's id, owner and parameters (seal 2)."""
        self._changed("token", token_id)
        self._run(self._token_sql.set_secret, (sealed, token_id))

    def tokens_sealed_before(self, seal: int) -> list[TokenRow]:
        """Tokens whose secret is bound the old way (the partial index makes the usual answer, none, cheap)."""
        return [token_row(r) for r in self._all(self._token_sql.sealed_before, (seal,))]

    def set_token_active(self, token_id: int, active: bool) -> None:
        self._changed("token", token_id)
        self._run(self._token_sql.set_active, (int(active), token_id))

    def delete_token(self, token_id: int) -> None:
        self._changed("token", token_id)
        self._run(self._token_sql.delete_challenges, (token_id,))
        self._run(self._token_sql.delete, (token_id,))

    def advance_hotp(self, token_id: int, *, expected: int, new_counter: int) -> bool:
        """Compare-and-set: move the counter forward only if nobody else moved it. False means lost the race."""
        self._changed("token", token_id)
        return self._run(self._token_sql.advance_hotp, (new_counter, token_id, expected, new_counter)) == 1

    def advance_totp(self, token_id: int, *, expected: int, new_step: int, drift: int) -> bool:
        """Compare-and-set: record the accepted step only if it is newer than the last one and nobody moved it."""
        self._changed("token", token_id)
        return self._run(self._token_sql.advance_totp, (new_step, drift, token_id, expected, new_step)) == 1

    def set_token_option(self, token_id: int, key: str, value: Any) -> None:
        """Set one key of the token's options JSON (e.g. the last send time of an email/sms token)."""
        self._changed("token", token_id)
        self._run(self._token_sql.set_option, (self.dialect.json_path(key), self.dialect.json_value(value), token_id))


def _quoted(column: str) -> str:
    """A column name from the caller's code, quoted: "window" is a reserved word in SQL."""
    return f'"{column}"'
