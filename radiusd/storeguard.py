"""The worker's verifier, guarded against a store that goes away or goes bad under a running server.

A long-running server holds its store connection open. After a store error (SQLite: disk full, I/O error, the file
system gone read-only; PostgreSQL: the server stopped, crashed or failed over, the network cut) the connection may be
in doubt or dead. A SQLite file deleted or replaced (restored from a backup) would leave the connection verifying
against the old inode: codes accepted there are forgotten by every other process, and could be accepted again by a
PAM login.

`GuardedVerifier` drops the connection after a store error and opens a new one for the next request; before every
call it asks a store that can be replaced (otpcore.store.Replaceable: SQLite, one `stat`) whether it was. A store that
cannot be opened raises StoreError, so the request gets no answer (fail closed: the NAS retries or fails over to
another server, which is what it should do while the database is down); the next request tries again, so the server
recovers by itself when the fault is removed (a multi-host PostgreSQL URL finds the new primary). The fault is logged
once when it starts and once when it ends; the worker counts the requests it cost (`store_unavailable`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from otpcore.chap import Response
from otpcore.config import Config
from otpcore.decision import Decision
from otpcore.errors import OtpError, StoreError
from otpcore.store import Replaceable, Store

if TYPE_CHECKING:
    from otpcore.service import Verifier

__all__ = ["GuardedVerifier"]

log = logging.getLogger("otp.radiusd")


class GuardedVerifier:
    def __init__(self, config: Config, opener: Callable[[Config], Verifier] | None = None) -> None:
        if opener is None:
            from otpcore.service import Verifier

            opener = Verifier.open
        self._config = config
        self._opener = opener
        self._where = config.store.where
        self._verifier: Verifier | None = None
        self._faulty = False  # a store fault was reported and no call has succeeded since
        self._batching = False  # inside batch(): the connection stays as it is until the batch ends
        self._precheck_failed = False
        self._open()  # at start-up a missing store or key is the caller's error to report

    @property
    def store(self) -> Store:
        return self._ensure().store

    def login(self, user: str, password: bytes, *, first_factor: str, door: str, client: str, now: float,
              source: str | None = None) -> Decision:
        verifier = self._ensure()
        try:
            decision = verifier.login(user, password, first_factor=first_factor, door=door, client=client, now=now,
                                      source=source)
        except StoreError as exc:
            raise self._faulted(exc) from None
        self._recovered()
        return decision

    def answer_challenge(self, state: bytes, user: str, code: bytes, *, door: str, client: str, now: float,
                         source: str | None = None) -> Decision:
        verifier = self._ensure()
        try:
            decision = verifier.answer_challenge(state, user, code, door=door, client=client, now=now, source=source)
        except StoreError as exc:
            raise self._faulted(exc) from None
        self._recovered()
        return decision

    def login_response(self, user: str, response: Response, *, first_factor: str, door: str, client: str, now: float,
                       source: str | None = None) -> Decision:
        verifier = self._ensure()
        try:
            decision = verifier.login_response(user, response, first_factor=first_factor, door=door, client=client,
                                               now=now, source=source)
        except StoreError as exc:
            raise self._faulted(exc) from None
        self._recovered()
        return decision

    def precheck(self, logins: Sequence[tuple[str, bytes, str]], *, now: float) -> None:
        """The verifier's precheck(), an optimisation only: whatever fails here is left for the batch to meet (a store
        fault) or costs only the time it took; the requests are decided all the same."""
        if self._verifier is None:
            return
        try:
            self._verifier.precheck(logins, now=now)
        except Exception as exc:
            if not self._precheck_failed:  # once: it may fail for every group, and each is decided anyway
                self._precheck_failed = True
                log.warning("checking codes ahead failed (%s: %s); requests are decided without it",
                            type(exc).__name__, exc)

    def batchable(self, password: bytes | None, first_factor: str, state: bytes | None, *, response: bool = False
                  ) -> bool:
        """Nothing while the store is dropped after a fault: each request then reopens it by itself."""
        return self._verifier is not None and self._verifier.batchable(password, first_factor, state,
                                                                       response=response)

    @contextlib.contextmanager
    def batch(self, users: Sequence[str] = ()) -> Iterator[None]:
        """The verifier's batch() (one transaction around several calls). The store is checked once, at the start:
        the calls inside share the connection, so it is neither reopened nor dropped before the end; a store fault
        inside ends the batch (rolled back) and then drops the connection."""
        verifier = self._ensure()
        self._batching = True
        try:
            with verifier.batch(users):
                yield
        except StoreError as exc:
            self._batching = False  # before the fault is seen: the rolled-back connection is dropped
            raise self._faulted(exc) from None
        finally:
            self._batching = False

    def close(self) -> None:
        self._drop()

    # -- the guard ----------------------------------------------------------------------------------------------------

    def _faulted(self, exc: OtpError) -> OtpError:
        """After a store fault the connection in doubt is dropped: the next request reopens."""
        self._fault(exc)
        return exc

    def _open(self) -> Verifier:
        verifier = self._verifier = self._opener(self._config)
        return verifier

    def _fault(self, exc: OtpError) -> None:
        if not self._faulty:  # once per outage: every request meanwhile has its own decision line
            log.error("%s; requests get no answer until the store works again", exc)
        self._faulty = True
        if not self._batching:  # else batch() drops the connection once its transaction is rolled back
            self._drop()

    def _recovered(self) -> None:
        if self._faulty:
            self._faulty = False
            log.warning("store %s works again", self._where)

    def _drop(self) -> None:
        if self._verifier is not None:
            with contextlib.suppress(Exception):  # a connection on a dead file system may fail to close
                self._verifier.close()
            self._verifier = None

    def _ensure(self) -> Verifier:
        """The verifier to call, reopened if the store was deleted or replaced, or dropped after a fault."""
        verifier = self._verifier
        if verifier is not None:
            if self._batching:
                return verifier  # checked when the batch began
            store = verifier.store
            if not (isinstance(store, Replaceable) and store.replaced()):
                return verifier
            log.error("store %s was deleted or replaced under the running server: reopening it", self._where)
            self._drop()
        try:
            return self._open()
        except OtpError as exc:
            raise self._faulted(exc) from None
        except Exception as exc:  # e.g. an OSError the opener did not wrap: still a store fault
            raise self._faulted(StoreError(f"cannot open store {self._where}: {exc}")) from None
