"""Admission control between a worker's receiving thread and its evaluating threads: load shedding under overload.

The receiving thread decodes and authenticates packets far faster than the evaluating threads can verify them
(argon2, SQLite, PAM), so under a flood something must give. This queue drops rather than grows:

- at most `capacity` requests wait; when the queue is full, the oldest ordinary request is dropped unanswered to make
  room (its client has retransmitted or failed over to another server, which is what RADIUS clients do with a silent
  server; a retransmission is then a new arrival). Only when every waiting request carries a State is the arriving
  one dropped instead;
- a request carrying a State this worker issued (the second leg of an ongoing challenge) goes ahead of the others
  and is never pushed out by an ordinary one (RFC 5080 §2.2.3: prefer the requests that complete an authentication
  already under way over the ones that start a new one);
- a request that waited longer than `max_wait` seconds is dropped unevaluated when its turn comes: its client has
  given up or retransmitted, and verifying it would only delay the requests still awaited;
- while a backlog stands (the oldest ordinary request has waited more than `lifo_after` seconds, or the queue is more
  than half full), the newest is served first, so the requests whose clients are still listening get answers, and
  the server answers fresh requests at once when a flood stops instead of first working through a backlog.

Control items (a reloaded configuration) are never dropped and go first; `close()` ends the queue after what it holds.

Threading: one producer (`offer`, `put_control`, `close`) and any number of consumers (`get`: a worker's evaluating
threads). The deques are thread-safe for appends and pops at either end; a wake-up token per item in a SimpleQueue
lets a consumer block. An item shed by the producer leaves a spare token behind, which a consumer skips. Consumers
choose and take their items under a lock of their own (the producer never waits for it), and each of them gets
CLOSED once the queue is closed and empty.

`IssuedStates` remembers the States this worker sent in its Access-Challenges, so the receiving thread can tell a
valid State (an answer to a real challenge, unforgeable: 16 random octets) from an arbitrary one without the store.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Generic, TypeVar

__all__ = ["CLOSED", "EMPTY", "Admission", "IssuedStates"]

CLOSED: Final = object()  # get()'s answer once the queue is closed and empty
EMPTY: Final = object()  # get(block=False)'s answer when nothing is waiting
_NOTHING: Final = object()

T = TypeVar("T")


class Admission(Generic[T]):
    def __init__(self, capacity: int, *, max_wait: float = 5.0, lifo_after: float = 1.0,
                 on_stale: Callable[[T], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.max_wait = max_wait
        self.lifo_after = lifo_after
        self._on_stale = on_stale
        self._clock = clock
        self._urgent: deque[tuple[float, T]] = deque()
        self._normal: deque[tuple[float, T]] = deque()
        self._control: deque[T] = deque()
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._consumers = threading.Lock()  # taken by get() only
        self._closed = False

    def __len__(self) -> int:
        return len(self._urgent) + len(self._normal)

    # -- producer -----------------------------------------------------------------------------------------------------

    def offer(self, item: T, *, urgent: bool = False) -> tuple[bool, T | None]:
        """Queue a request. Returns (admitted, shed): `shed` is the ordinary request dropped to make room (the caller
        forgets it as if it had never been queued), else None."""
        shed = None
        if len(self._urgent) + len(self._normal) >= self.capacity:
            try:
                shed = self._normal.popleft()[1]  # the oldest ordinary request: the least likely to be awaited
            except IndexError:  # every waiting request carries a State (or the consumer took the last one meanwhile)
                if len(self._urgent) >= self.capacity:
                    return False, None
        (self._urgent if urgent else self._normal).append((self._clock(), item))
        self._tokens.put(None)
        return True, shed

    def put_control(self, item: T) -> None:
        self._control.append(item)
        self._tokens.put(None)

    def close(self) -> None:
        self._closed = True
        self._tokens.put(None)

    # -- consumer -----------------------------------------------------------------------------------------------------

    def get(self, block: bool = True) -> T | object:
        """The next item to evaluate (blocking), or CLOSED; with block=False, EMPTY when nothing is waiting.
        `on_stale` is called here, under the consumers' lock."""
        while True:
            if block:
                self._tokens.get()
            else:
                try:
                    self._tokens.get_nowait()
                except queue.Empty:
                    return EMPTY
            with self._consumers:
                item = self._take()
            if item is not _NOTHING:
                return item
            if self._closed and not self._urgent and not self._normal and not self._control:
                self._tokens.put(None)  # for the next consumer: it is closed for everyone
                return CLOSED

    def _take(self) -> T | object:
        if self._control:
            return self._control.popleft()
        now = self._clock()
        self._drop_stale(self._urgent, now)
        self._drop_stale(self._normal, now)
        if self._urgent:
            return self._urgent.popleft()[1]
        normal = self._normal
        try:
            if now - normal[0][0] > self.lifo_after or 2 * len(normal) > self.capacity:
                return normal.pop()[1]
            return normal.popleft()[1]
        except IndexError:  # empty: a spare token (its item was shed), or the last one was just shed
            return _NOTHING

    def _drop_stale(self, items: deque[tuple[float, T]], now: float) -> None:
        limit = now - self.max_wait
        while True:
            try:
                received, item = items[0]
                if received >= limit:
                    return
                items.popleft()
            except IndexError:
                return
            if self._on_stale is not None:
                self._on_stale(item)


class IssuedStates:
    """The States of this worker's Access-Challenges still open, bounded (the oldest are forgotten first).

    `add` and `discard` from the threads that decide, `valid` and `expire` from the receiving thread: single dict
    operations, atomic under the GIL."""

    def __init__(self, ttl: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._expiry: dict[bytes, float] = {}  # insertion order is expiry order (one ttl, a monotonic clock)

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, state: bytes) -> None:
        if len(self._expiry) >= self.max_entries:
            with contextlib.suppress(StopIteration, RuntimeError):  # emptied or changed by the other thread
                self._expiry.pop(next(iter(self._expiry)), None)
        self._expiry[state] = self._clock() + self.ttl

    def discard(self, state: bytes) -> None:
        self._expiry.pop(state, None)

    def valid(self, state: bytes) -> bool:
        expiry = self._expiry.get(state)
        return expiry is not None and expiry > self._clock()

    def expire(self) -> None:
        now = self._clock()
        expiry = self._expiry
        while expiry:
            try:
                state = next(iter(expiry))
            except (StopIteration, RuntimeError):
                return
            if expiry.get(state, 0.0) > now:
                return
            expiry.pop(state, None)
