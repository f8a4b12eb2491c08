"""What every SQL backend shares: the transaction and the state it carries, and the primitives a backend gives.

Every verification runs in one transaction (read, decide, write, audit) that holds the write lock from its start
(SQLite) or locks its users' rows before it reads them (PostgreSQL), and counters / time steps advance by
compare-and-set on top of that, so two processes, or two servers, can never accept the same code. A
transaction may hold a group of verifications (group commit): their users are read together (`prefetch`), their audit
rows written together at its end, the per-client throttle read once. That state lives here, the same for every engine.

A backend subclasses `SqlStore` with the aggregates (users, tokens, ...) and implements the primitives: run a
statement (`_one`, `_all`, `_run`, `_many`), begin, commit, roll back, close. Each primitive raises StoreError for any
error of the engine, so no engine's exception leaves the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from ..errors import StoreError
from ..policy import ThrottleState
from .dialect import Dialect
from .rows import TokenRow, UserRow

__all__ = ["Params", "SqlStore", "encodable", "printable"]

Params = tuple[Any, ...]


class SqlStore:
    """One connection to a SQL store. Not thread-safe: one per thread or process."""

    dialect: ClassVar[Dialect]
    _engine_errors: ClassVar[tuple[type[Exception], ...]] = ()  # the engine's exceptions, to wrap if any escapes

    def __init__(self) -> None:
        self._depth = 0  # nested transaction() blocks open
        self._pending_audit: list[Params] = []  # audit rows of the open transaction, written at its end
        self._prefetched: dict[str, tuple[UserRow | None, list[TokenRow]]] = {}  # prefetch(), in the transaction
        self._prefetched_ids: dict[tuple[str, int], str] = {}  # ("user" | "token", id) -> name, of _prefetched
        self._throttles: dict[str, ThrottleState] = {}  # throttle(), read in the open transaction
        # The open transaction is a group commit (prefetch() read its users together, locking them where rows are
        # locked): a backend may then defer its writes to the group's end (PostgreSQL: one round trip for all).
        self._group = False

    def transaction(self) -> AbstractContextManager[None]:
        """A transaction in which read-decide-write cannot interleave (Store.transaction).

        Nested blocks join the outermost one, whose end commits them all (or rolls them all back)."""
        return _Transaction(self)

    # -- what a backend implements ------------------------------------------------------------------------------------

    def close(self) -> None:
        raise NotImplementedError

    def _one(self, sql: str, params: Params = ()) -> Params | None:
        """The first row of a query's answer (None: no row)."""
        raise NotImplementedError

    def _all(self, sql: str, params: Params = ()) -> list[Params]:
        """Every row of a query's answer (of a statement's RETURNING)."""
        raise NotImplementedError

    def _run(self, sql: str, params: Params = ()) -> int:
        """A statement that writes; returns how many rows it changed."""
        raise NotImplementedError

    def _many(self, sql: str, rows: Sequence[Params]) -> None:
        """One statement run for each row of parameters."""
        raise NotImplementedError

    def _locked_all(self, lock: str, sql: str, params: Params) -> list[Params]:
        """_all(sql), after `lock` (the same parameters) has locked the rows it reads, inside a transaction ("": no
        lock to take, the transaction holds the write lock)."""
        if lock and self._depth:
            self._run(lock, params)
        return self._all(sql, params)

    def _begin(self) -> None:
        """Begin a transaction holding the write lock (or the locks the first reads will take)."""
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        """Roll back whatever is open; never raises (it runs while another error is being reported)."""
        raise NotImplementedError

    def _flush_audit(self, rows: Sequence[Params]) -> None:
        """Write the audit rows of the transaction ending (the audit aggregate's)."""
        raise NotImplementedError

    # -- the transaction's cached reads -------------------------------------------------------------------------------

    def _changed(self, kind: str, row_id: int) -> None:
        """A user's or a token's row is written: a prefetched copy of it is no longer what the store holds. A row
        whose owner is not known here (e.g. an inactive token made active) forgets every prefetched user."""
        if self._prefetched:
            name = self._prefetched_ids.get((kind, row_id))
            if name is None:
                self._prefetched = {}
            else:
                self._prefetched.pop(name, None)


class _Transaction:
    """SqlStore.transaction(): a class rather than a generator, as it is entered several times per verification."""

    __slots__ = ("_outer", "_store")

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._outer = False

    def __enter__(self) -> None:
        store = self._store
        if store._depth:
            store._depth += 1
            return
        store._begin()
        store._depth = 1
        self._outer = True

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        store = self._store
        if not self._outer:
            store._depth -= 1
            return
        store._depth = 0
        if store._prefetched:
            store._prefetched = {}
        if store._throttles:
            store._throttles = {}
        store._group = False
        pending, store._pending_audit = store._pending_audit, []
        if exc_type is not None:
            store._rollback()
            if isinstance(exc, store._engine_errors):  # an engine's error raised past the store: one of ours
                raise StoreError(f"store error: {exc}") from None
            return
        try:
            if pending:
                store._flush_audit(pending)
            store._commit()
        except BaseException:  # whatever it is, the write lock is not kept
            store._rollback()
            raise


def encodable(text: str) -> bool:
    """Whether every store can hold the text: not lone surrogates from undecodable input, nor a NUL (PostgreSQL's text
    cannot hold one; SQLite's json_each ends a string there). No user name has either."""
    if "\0" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str | None) -> str | None:
    """Text from the network as every store can hold it: undecodable bytes and NULs shown as escapes."""
    if text is None or encodable(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode().replace("\0", "\\x00")
