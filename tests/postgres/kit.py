"""Helpers of the PostgreSQL suite: otp-radiusd nodes whose configs name one PostgreSQL database (url +
password_file, the key file copied from the first node, as an admin distributes it), and the database read from
outside with psycopg.

The servers are tests/kit's RadiusServer (kill -9, extra arguments) with only the [store] table changed; the
database is one of tests/kit's private clusters.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import psycopg

from tests.kit.radiusd import RadiusServer
from tests.kit.tools import tool

__all__ = ["DatabaseLike", "PgServer", "PgState", "otp_admin", "pg_config_lines"]


class DatabaseLike(Protocol):
    """A tests.kit Database or ReplicatedPair: where the store is, and the password kept out of the URL."""

    @property
    def url(self) -> str: ...

    @property
    def password(self) -> str: ...


def pg_config_lines(folder: Path, database: DatabaseLike) -> list[str]:
    """The [store] table's PostgreSQL keys, the password written to `folder`/db.password (0600)."""
    password = folder / "db.password"
    password.write_text(database.password + "\n")
    password.chmod(0o600)
    return [f'url = "{database.url}"', f'password_file = "{password}"']


class PgServer(RadiusServer):
    """otp-radiusd with its store in `database`. `key_from`: the node whose key file this one gets (the same sealing
    key on every node); without, `otp-admin init` makes one (the first node)."""

    def __init__(self, tmp: Path, database: DatabaseLike, *, key_from: Path | None = None, **kwargs: Any) -> None:
        self.database = database
        if key_from is not None:
            shutil.copy2(key_from, tmp / "otp.key")
        super().__init__(tmp, **kwargs)

    def write_config(self) -> None:
        super().write_config()
        text = self.config_path.read_text()
        assert 'path = "otp.sqlite"' in text  # the line RadiusServer writes, replaced
        store = "\n".join(pg_config_lines(self.dir, self.database))
        self.config_path.write_text(text.replace('path = "otp.sqlite"', store))


def otp_admin(config: Path, *args: str, stdin: str | None = None, timeout: float = 60
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("otp-admin"), "--config", str(config), *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout)


class PgState:
    """The store's tables read from outside (a connection of its own, autocommit)."""

    def __init__(self, database: DatabaseLike) -> None:
        self.conn = psycopg.connect(database.url, password=database.password, autocommit=True, connect_timeout=5)

    def __enter__(self) -> PgState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def counters(self) -> dict[str, int]:
        return dict(self._rows("SELECT u.name, t.counter FROM tokens t JOIN users u ON u.id = t.user_id "
                               "WHERE t.type = 'hotp'"))  # type: ignore[arg-type]

    def failures(self) -> dict[str, int]:
        return dict(self._rows("SELECT name, failures FROM users"))  # type: ignore[arg-type]

    def audit_counts(self) -> dict[tuple[str, str, str], int]:
        rows = self._rows('SELECT "user", result, reason, count(*) FROM audit GROUP BY "user", result, reason')
        return {(u, r, why): n for u, r, why, n in rows}

    def audit_doors(self, user: str) -> list[tuple[str, str, str | None]]:
        return [tuple(r) for r in self._rows(  # type: ignore[misc]
            'SELECT door, result, client FROM audit WHERE "user" = %s ORDER BY id', (user,))]
