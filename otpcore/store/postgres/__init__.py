"""The PostgreSQL backend of the store, for several servers sharing one state: the connection and its transactions
(`backend`), connecting with a URL and a password file (`connect`), and the schema and its migrations (`schema`).

psycopg is imported here only, and only when the configuration has `[store] url`: a PAM login or a SQLite
installation never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import StoreError

if TYPE_CHECKING:
    from ...config import StoreConfig
    from .backend import PostgresStore

__all__ = ["MISSING_DRIVER", "open_postgres"]

MISSING_DRIVER = "the PostgreSQL store needs psycopg, which is not installed: pip install otp-server[postgres]"


def open_postgres(config: StoreConfig, *, create: bool = False, migrate: bool = True) -> PostgresStore:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreError(MISSING_DRIVER) from None
    from .backend import PostgresStore

    return PostgresStore.open(config, create=create, migrate=migrate)
