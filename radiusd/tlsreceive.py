"""The TLS thread's checks of each packet read from a RadSec connection: the receiving thread's (receive.py), with
the client already known (matched on the connection's address and certificate) and the packet code deciding whether
it is an Access-Request or an Accounting-Request (RadSec carries both on one connection, RFC 6614 §2.3).

The same counters, the same duplicate cache, the same drop lines; every request then goes to the admission queue of
the evaluating threads, which decide it as they decide one from UDP and send the reply through the connection. Over
RADIUS/1.1 nothing is MD5 (RFC 9765), and a request is known by its connection and Token, with a digest of the
packet: a client may use a Token again for another request once it has its answer.

The TLS connection authenticates every packet (its peer's certificate), so a Message-Authenticator is checked when a
request has one but never required: radsecproxy 1.9 forwards requests without one, and the BlastRADIUS forgery needs
an unprotected UDP path. A packet that fails authentication or framing closes its connection (RFC 6613 §2.6.4); one
with a code this server does not serve is only dropped.
"""

from __future__ import annotations

import time

from otpbase.radius import (
    ACCESS_ACCEPT,
    ACCOUNTING_REQUEST,
    STATUS_SERVER,
    UNSUPPORTED_CODE,
    Drop,
)
from otpbase.radius.access import decode_request
from otpbase.radius.accounting import decode_accounting
from otpbase.radius.replies import encode_accounting_response, encode_reply

from .dedup import Key
from .jobs import AccessJob, AccountingJob
from .receive import ACCESS_NAMES, ACCOUNTING_NAMES, CounterNames, Receiver
from .tlsconn import Connection

__all__ = ["TlsReceiver"]

_KEEPS_CONNECTION = frozenset((UNSUPPORTED_CODE,))


class TlsReceiver(Receiver):
    """A Receiver with no client table of its own (each connection has its client) and no code group."""

    def packet(self, conn: Connection, data: bytes) -> bool:
        """One packet of `conn` (whole, as framed); False when the connection must be closed."""
        if data[0] == ACCOUNTING_REQUEST:
            return self._accounting_packet(conn, data)
        return self._access_packet(conn, data)

    def _access_packet(self, conn: Connection, data: bytes) -> bool:
        client = conn.client
        assert client is not None
        key = self._first_seen(conn, data, ACCESS_NAMES)
        if key is None:
            return True
        try:
            request = decode_request(data, client.secret, tls=True, radius11=conn.radius11,
                                     require_message_authenticator=client.require_message_authenticator)
        except Drop as drop:
            self.counters[drop.reason] += 1
            self.dropped(drop.reason, client.name, data, conn.addr)
            return drop.reason in _KEEPS_CONNECTION
        if request.code == STATUS_SERVER:  # the watchdog of RFC 6614 §2.6 (RFC 5997)
            self.counters[ACCESS_NAMES.status_server] += 1
            conn.sendto(encode_reply(ACCESS_ACCEPT, request, client.secret), conn.addr)
            return True
        job = AccessJob(conn, conn.addr, key, client, request)
        self._shared.cache.begin(key)
        self._queue(job, request.state is not None and self._shared.states.valid(request.state), ACCESS_NAMES)
        return True

    def _accounting_packet(self, conn: Connection, data: bytes) -> bool:
        client = conn.client
        assert client is not None
        key = self._first_seen(conn, data, ACCOUNTING_NAMES)
        if key is None:
            return True
        try:
            request = decode_accounting(data, client.secret, tls=True, radius11=conn.radius11)
        except Drop as drop:
            self.counters[f"acct_{drop.reason}"] += 1
            self.dropped(drop.reason, client.name, data, conn.addr)
            return drop.reason in _KEEPS_CONNECTION
        if request.code == STATUS_SERVER:
            self.counters[ACCOUNTING_NAMES.status_server] += 1
            conn.sendto(encode_accounting_response(request, client.secret), conn.addr)
            return True
        self._shared.cache.begin(key)
        self._queue(AccountingJob(conn, conn.addr, key, client, request), False, ACCOUNTING_NAMES)
        return True

    def _first_seen(self, conn: Connection, data: bytes, names: CounterNames) -> Key | None:
        """The cache key of a request seen for the first time; None for a retransmission (answered again from the
        cache, or dropped while the first one is in flight)."""
        self.counters[names.received] += 1
        host, port = conn.addr[0], conn.addr[1]
        if conn.radius11:  # the Token, and the packet it stands for (RFC 9765 §4.2.2)
            key: Key = (host, port, 0, data[4:8] + hash(data).to_bytes(8, "big", signed=True))
        else:
            key = (host, port, data[1], data[4:20])
        cached = self._shared.cache.lookup(key, time.monotonic())
        if cached is None:
            return key
        if cached:
            self.counters[names.duplicate_answered] += 1
            conn.sendto(cached, conn.addr)
        else:
            self.counters[names.duplicate_in_flight] += 1
        return None
