"""The core as the web door calls it: Verifiers (one per thread, never shared), used off the event loop.

`VerifierPool` lends a Verifier to a worker thread for one call (a login with argon2, PAM or the directory takes
milliseconds to seconds: the event loop must go on meanwhile). `FastLane` decides code-only logins (first_factor
"none", no transaction_id) in groups on one thread of its own: one transaction and one commit per group (the core's
group commit, as otp-radiusd does), which is what lets a 2-core machine answer thousands of them a second.

A Verifier whose store failed is closed and opened again for the next call (a store restored from a backup, a disk
that was full): the failed call gets an error, the next one a fresh connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

from otpcore.decision import Decision
from otpcore.errors import StoreError
from otpcore.service import Verifier

__all__ = ["FastLane", "VerifierPool"]

log = logging.getLogger("otp.web")

T = TypeVar("T")
_GROUP_MAX = 256  # logins decided in one transaction


class VerifierPool:
    """Up to `size` Verifiers, opened when first needed, each used by one thread at a time."""

    def __init__(self, opener: Callable[[], Verifier], size: int = 4) -> None:
        self._opener = opener
        self._idle: queue.LifoQueue[Verifier | None] = queue.LifoQueue()
        for _ in range(size):
            self._idle.put(None)  # a free slot: a Verifier opened on first use
        self._closed = False

    async def run(self, call: Callable[[Verifier], T]) -> T:
        """`call(verifier)` in a worker thread."""
        return await anyio.to_thread.run_sync(self._run, call)

    def _run(self, call: Callable[[Verifier], T]) -> T:
        verifier = self._idle.get()
        try:
            if verifier is None:
                verifier = self._opener()
            result = call(verifier)
        except StoreError:
            if verifier is not None:
                _close(verifier)
            verifier = None  # the next call opens the store again
            raise
        finally:
            self._idle.put(verifier)
        return result

    def close(self) -> None:
        self._closed = True
        while not self._idle.empty():
            verifier = self._idle.get_nowait()
            if verifier is not None:
                _close(verifier)


class _Login:
    __slots__ = ("client", "future", "loop", "password", "source", "user")

    def __init__(self, user: str, password: bytes, client: str, source: str | None,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.user, self.password, self.client, self.source, self.loop = user, password, client, source, loop
        self.future: asyncio.Future[Decision] = loop.create_future()


class FastLane:
    """Code-only logins (first_factor "none"), decided in groups by one thread."""

    def __init__(self, opener: Callable[[], Verifier], door: str = "web") -> None:
        self._opener = opener
        self._door = door
        self._queue: queue.SimpleQueue[_Login | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="otp-web-fastlane", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(15)
            self._thread = None

    async def login(self, user: str, password: bytes, *, client: str, source: str | None) -> Decision:
        item = _Login(user, password, client, source, asyncio.get_running_loop())
        self._queue.put(item)
        return await item.future

    def _serve(self) -> None:
        verifier: Verifier | None = None
        while True:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < _GROUP_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(item)
            try:
                if verifier is None:
                    verifier = self._opener()
                outcomes: list[Decision | BaseException] = list(self._decide(verifier, group))
            except Exception as exc:
                if verifier is not None:
                    _close(verifier)
                    verifier = None
                log.error("fast lane: %d logins not decided: %s", len(group), exc if isinstance(exc, StoreError)
                          else type(exc).__name__)
                outcomes = [exc] * len(group)
            for item, outcome in zip(group, outcomes, strict=True):
                item.loop.call_soon_threadsafe(_settle, item.future, outcome)
        if verifier is not None:
            _close(verifier)

    def _decide(self, verifier: Verifier, group: list[_Login]) -> list[Decision]:
        now = time.time()  # one time for the group: the prechecks are kept by it
        verifier.precheck([(item.user, item.password, "none") for item in group], now=now)
        with verifier.batch([item.user for item in group]):
            return [verifier.login(item.user, item.password, first_factor="none", door=self._door,
                                   client=item.client, now=now, source=item.source) for item in group]


def _settle(future: asyncio.Future[Decision], outcome: Decision | BaseException) -> None:
    if future.done():  # the client went away
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _close(verifier: Verifier) -> None:
    with contextlib.suppress(StoreError):
        verifier.close()
