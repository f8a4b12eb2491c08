"""The SQLite backend of the store (the embedded default): the connection and its transactions (`backend`), the
schema and its migrations (`schema`), and the workers' turns at the write lock (`turn`)."""

from .backend import SqliteStore

__all__ = ["SqliteStore"]
