"""The duplicate-request cache of RFC 5080 §2.2.2.

A request is identified by (client address, client port, ID, Request Authenticator). While it is being evaluated it
is *in flight* and a retransmission is dropped; once answered, a retransmission within `ttl` seconds gets the same
reply bytes and is never evaluated again (a valid code must not turn into a replay reject).

Threading: one receiving thread calls `lookup`, `begin` and `expire`; the threads that decide (the receiving thread
for code checks, the evaluating threads) call `finish` and `abandon`. Each step is a single dict or set operation
(atomic under the GIL), ordered so that the receiver always sees a request as in flight or answered, never neither:
`finish` stores the reply before it clears the in-flight mark.
"""

from __future__ import annotations

import contextlib
from typing import Final

__all__ = ["IN_FLIGHT", "Key", "ReplyCache"]

Key = tuple[str, int, int, bytes]  # host, port, ID, Request Authenticator
IN_FLIGHT: Final = b""  # lookup's answer for a request still being evaluated (a real reply is never empty)


class ReplyCache:
    def __init__(self, ttl: float = 30.0, max_entries: int = 1_000_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # Insertion order is expiry order (one ttl, a monotonic clock; threads finishing at the same time may swap
        # two neighbours, which only keeps one of them a moment longer).
        self._replies: dict[Key, tuple[float, bytes]] = {}
        self._in_flight: set[Key] = set()

    def __len__(self) -> int:
        return len(self._replies)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def lookup(self, key: Key, now: float) -> bytes | None:
        """The cached reply, IN_FLIGHT, or None for a request seen for the first time (or too long ago)."""
        if key in self._in_flight:
            return IN_FLIGHT
        entry = self._replies.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            self._replies.pop(key, None)  # stale: a new request that happens to reuse ID and authenticator
            return None
        return entry[1]

    def begin(self, key: Key) -> None:
        self._in_flight.add(key)

    def finish(self, key: Key, reply: bytes, now: float) -> None:
        if len(self._replies) >= self.max_entries:
            self._pop_oldest()
        self._replies[key] = (now + self.ttl, reply)
        self._in_flight.discard(key)

    def abandon(self, key: Key) -> None:
        """No reply (the evaluation failed): a retransmission is evaluated afresh."""
        self._in_flight.discard(key)

    def expire(self, now: float) -> int:
        """Forget replies older than ttl; returns how many."""
        replies = self._replies
        removed = 0
        while replies:
            try:
                key = next(iter(replies))
            except (StopIteration, RuntimeError):  # emptied or grown by the other thread meanwhile: next time
                break
            entry = replies.get(key)
            if entry is not None and entry[0] > now:
                break
            replies.pop(key, None)
            removed += 1
        return removed

    def _pop_oldest(self) -> None:
        with contextlib.suppress(StopIteration, RuntimeError):  # empty, or changed by the other thread
            self._replies.pop(next(iter(self._replies)), None)
