"""Every dropped request explained in the log: a warning line per client and reason, rate-limited.

A request that gets no answer (unknown client, malformed, bad or missing Message-Authenticator, unsupported code,
overload) leaves the NAS's admin with "no reply" and nothing else; so the first drop of each kind from each client is
logged at once, at warning level, with what it means, and the following ones are counted: after INTERVAL seconds, the
next drop (or the housekeeping, if none comes) logs how many there were. `--log-level debug` logs each one as well.
A flood from many forged addresses cannot grow the table past MAX_KEYS: beyond it, drops are counted under one key.

Shared by the threads that receive (UDP, TLS): a lock around the table, taken only for a drop, never for an answer.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from otpbase.escape import escape
from otpbase.radius import (
    BAD_AUTHENTICATOR,
    MALFORMED,
    MISSING_MESSAGE_AUTHENTICATOR,
    UNSUPPORTED_CODE,
)

from .udp import Address, format_address

__all__ = ["INTERVAL", "MAX_KEYS", "OVERLOAD", "UNKNOWN_CLIENT", "DropLog", "describe"]

log = logging.getLogger("otp.radiusd")

INTERVAL = 60.0  # seconds between two warning lines for one client and reason
MAX_KEYS = 1024
UNKNOWN_CLIENT = "unknown_client"
OVERLOAD = "overload"
_OTHERS = "(others)"  # the key of every drop past MAX_KEYS

# What each reason means to the admin who sees it.
EXPLAINED = {
    UNKNOWN_CLIENT: "no [[radius.clients]] entry matches this source address",
    MALFORMED: "the packet is malformed (its length, an attribute's framing, a User-Name or User-Password that "
               "cannot be right, or too many Proxy-States)",
    BAD_AUTHENTICATOR: "its authenticator or Message-Authenticator does not verify: the client's shared secret "
                       "differs from ours",
    MISSING_MESSAGE_AUTHENTICATOR: "it has no Message-Authenticator, which this client must send "
                                   "(require_message_authenticator; always for Status-Server and with Proxy-State)",
    UNSUPPORTED_CODE: "this port does not serve that packet code",
    OVERLOAD: "too many requests are waiting for an evaluating thread",
    # RadSec connections refused (tls.py says why in the line itself)
    "tls_handshake": "is the client's certificate issued by radius.tls_ca, and does the client speak TLS 1.2 or later?",
    "tls_subject": "set the client's tls_subject to one of these names, or leave it out",
    "tls_protocol": "RADIUS/1.1 needs TLS 1.3",
}


_CODES = {1: "Access-Request", 4: "Accounting-Request", 12: "Status-Server"}


def describe(data: bytes) -> str:
    """What a dropped packet was, from its header (whatever it holds): `Access-Request id=7 length=64`."""
    if len(data) < 2:
        return f"packet length={len(data)}"
    return f"{_CODES.get(data[0], f'code={data[0]}')} id={data[1]} length={len(data)}"


@dataclass
class _Entry:
    next_line: float  # monotonic time from which the next warning line may be written
    count: int = 0  # drops since the last line
    last: tuple[Address, bytes | str] = ("", 0), ""  # where the last one came from, and what it was


class DropLog:
    def __init__(self, label: str = "", interval: float = INTERVAL, max_keys: int = MAX_KEYS) -> None:
        self._label = label
        self._interval = interval
        self._max_keys = max_keys
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def drop(self, reason: str, who: str, addr: Address, what: bytes | str, now: float) -> None:
        """One dropped request: `who` is the client's name (or the source address of an unknown one), `addr` where
        it came from, `what` the packet (its bytes, described from its header) or a description of it. Nothing is
        formatted unless a line is written: a flood of drops costs a dict lookup each."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("dropped request: reason=%s client=%s %s%s", reason, escape(who, space=True),
                      _detail(addr, what), self._label)
        with self._lock:
            key = (who, reason)
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= self._max_keys:
                    key = (_OTHERS, reason)
                    entry = self._entries.get(key)
                if entry is None:
                    self._entries[key] = _Entry(now + self._interval)
                    log.warning("dropped request: reason=%s client=%s %s: %s (more of these are counted, one line a "
                                "minute)%s", reason, escape(key[0], space=True), _detail(addr, what),
                                EXPLAINED.get(reason, reason), self._label)
                    return
            entry.count += 1
            entry.last = addr, what
            if now >= entry.next_line:
                self._summary(reason, key[0], entry, now)

    def flush(self, now: float) -> None:
        """From the housekeeping: the counts whose interval is over; entries quiet for an interval are forgotten
        (the next drop is logged at once again)."""
        with self._lock:
            for key, entry in list(self._entries.items()):
                if now < entry.next_line:
                    continue
                if entry.count:
                    self._summary(key[1], key[0], entry, now)
                else:
                    del self._entries[key]

    def _summary(self, reason: str, who: str, entry: _Entry, now: float) -> None:
        log.warning("dropped requests: reason=%s client=%s count=%d since the last line, the last %s%s", reason,
                    escape(who, space=True), entry.count, _detail(*entry.last), self._label)
        entry.count = 0
        entry.next_line = now + self._interval


def _detail(addr: Address, what: bytes | str) -> str:
    return f"from={format_address(addr)} {describe(what) if isinstance(what, bytes) else what}"
