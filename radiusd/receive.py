"""The receiving thread's work on each datagram: everything cheap, so the socket is read at the pace packets arrive.

Client lookup, the duplicate cache, decoding and authenticating, Status-Server; then an Access-Request that is a code
check goes to the receiving thread's own group (decided at the end of this pass of the receive loop, decide.py), and
any other request to the admission queue of the evaluating threads (admission.py, evaluate.py). A request is in
flight in the cache from here until it is answered or forgotten, so a retransmission is never evaluated twice.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import NamedTuple

from otpbase.radius import (
    ACCESS_ACCEPT,
    BAD_AUTHENTICATOR,
    MALFORMED,
    MAX_PACKET,
    MISSING_MESSAGE_AUTHENTICATOR,
    STATUS_SERVER,
    UNSUPPORTED_CODE,
    Drop,
)
from otpbase.radius.access import decode_request
from otpbase.radius.accounting import decode_accounting
from otpbase.radius.replies import encode_accounting_response, encode_reply
from otpcore.config import ClientConfig

from .admission import Admission
from .clients import ClientTable
from .decide import CodeGroup
from .dedup import Key
from .droplog import OVERLOAD, UNKNOWN_CLIENT, DropLog
from .jobs import AccessJob, AccountingJob, Counters, Shared
from .udp import Address, send

__all__ = ["ACCESS_NAMES", "ACCOUNTING_NAMES", "ACCOUNTING_RECEIVE_COUNTERS", "RECEIVE_COUNTERS", "CounterNames",
           "Receiver"]

log = logging.getLogger("otp.radiusd")

RECEIVE_BATCH = 64  # datagrams read from one socket before looking at the others


class CounterNames(NamedTuple):
    """The counters of one kind of socket."""

    received: str
    unknown_client: str
    malformed: str
    bad_authenticator: str
    missing_message_authenticator: str
    unsupported_code: str
    duplicate_answered: str
    duplicate_in_flight: str
    overload: str
    status_server: str


ACCESS_NAMES = CounterNames("received", "unknown_client", MALFORMED, BAD_AUTHENTICATOR, MISSING_MESSAGE_AUTHENTICATOR,
                            UNSUPPORTED_CODE, "duplicate_answered", "duplicate_in_flight", "overload", "status_server")
# Accounting has counters of its own, prefixed: acct_received, acct_bad_authenticator, ...
ACCOUNTING_NAMES = CounterNames(*(f"acct_{name}" for name in ACCESS_NAMES))

RECEIVE_COUNTERS = (*ACCESS_NAMES, "errors")
ACCOUNTING_RECEIVE_COUNTERS = tuple(ACCOUNTING_NAMES)


class Receiver:
    """`clients` is replaced on reload; `group` is set once the worker has opened its verifier (until then every
    request goes to the queue)."""

    def __init__(self, shared: Shared, clients: ClientTable, admission: Admission[AccessJob | AccountingJob],
                 accounting_sockets: frozenset[socket.socket], drops: DropLog) -> None:
        self.clients = clients
        self.group: CodeGroup | None = None
        self.counters: Counters = dict.fromkeys(RECEIVE_COUNTERS + ACCOUNTING_RECEIVE_COUNTERS, 0)
        self.drops = drops
        self._shared = shared
        self._admission = admission
        self._accounting_sockets = accounting_sockets

    def receive(self, sock: socket.socket) -> None:
        """The datagrams waiting on `sock`, RECEIVE_BATCH at most."""
        recvfrom = sock.recvfrom
        handle = self.accounting if sock in self._accounting_sockets else self.access
        for _ in range(RECEIVE_BATCH):
            try:
                data, addr = recvfrom(MAX_PACKET + 1)
            except OSError:  # BlockingIOError: drained; anything else (ICMP errors...) is not a packet either
                return
            try:
                handle(sock, data, addr)
            except Exception:  # nothing a client sends may stop the loop
                self.counters["errors"] += 1
                log.exception("unexpected error handling a packet%s", self._shared.label)

    def access(self, sock: socket.socket, data: bytes, addr: Address) -> None:
        """An Access-Request (or Status-Server) on an authentication socket."""
        known = self._new_request(sock, data, addr, ACCESS_NAMES)
        if known is None:
            return
        client, key = known
        counters = self.counters
        try:
            request = decode_request(data, client.secret,
                                     require_message_authenticator=client.require_message_authenticator)
        except Drop as drop:
            counters[drop.reason] += 1
            self.dropped(drop.reason, client.name, data, addr)
            return
        if request.code == STATUS_SERVER:
            counters[ACCESS_NAMES.status_server] += 1
            send(sock, encode_reply(ACCESS_ACCEPT, request, client.secret), addr)
            return
        job = AccessJob(sock, addr, key, client, request)
        self._shared.cache.begin(key)
        group = self.group
        if group is not None and group.takes(job):
            group.pending.append(job)  # decided at the end of this pass of the receive loop, with the others read
            return
        urgent = request.state is not None and self._shared.states.valid(request.state)
        self._queue(job, urgent, ACCESS_NAMES)

    def accounting(self, sock: socket.socket, data: bytes, addr: Address) -> None:
        """An Accounting-Request (or Status-Server) on an accounting socket: checked here, recorded by an evaluating
        thread."""
        known = self._new_request(sock, data, addr, ACCOUNTING_NAMES)
        if known is None:
            return
        client, key = known
        try:
            request = decode_accounting(data, client.secret)
        except Drop as drop:
            self.counters[f"acct_{drop.reason}"] += 1
            self.dropped(drop.reason, client.name, data, addr)
            return
        if request.code == STATUS_SERVER:
            self.counters[ACCOUNTING_NAMES.status_server] += 1
            send(sock, encode_accounting_response(request, client.secret), addr)
            return
        self._shared.cache.begin(key)
        self._queue(AccountingJob(sock, addr, key, client, request), False, ACCOUNTING_NAMES)

    def _new_request(self, sock: socket.socket, data: bytes, addr: Address, names: CounterNames
                     ) -> tuple[ClientConfig, Key] | None:
        """The client and cache key of a request seen for the first time; None for one dropped or answered here (from
        an unknown address, too short, or a retransmission: the cached reply again, or nothing while in flight)."""
        counters = self.counters
        counters[names.received] += 1
        client = self.clients.lookup(addr[0])
        if client is None:
            counters[names.unknown_client] += 1
            self.dropped(UNKNOWN_CLIENT, addr[0], data, addr)
            return None
        if len(data) < 20:
            counters[names.malformed] += 1
            self.dropped(MALFORMED, client.name, data, addr)
            return None
        key = (addr[0], addr[1], data[1], data[4:20])
        cached = self._shared.cache.lookup(key, time.monotonic())
        if cached is None:
            return client, key
        if cached:
            counters[names.duplicate_answered] += 1
            send(sock, cached, addr)
        else:
            counters[names.duplicate_in_flight] += 1  # RFC 5080 §2.2.2: the first one is still being evaluated
        return None

    def dropped(self, reason: str, who: str, data: bytes, addr: Address) -> None:
        """Explained in the log (rate-limited, droplog.py); `who`: the client's name, or the address of an unknown
        one."""
        self.drops.drop(reason, who, addr, data, time.monotonic())

    def _queue(self, job: AccessJob | AccountingJob, urgent: bool, names: CounterNames) -> None:
        admitted, shed = self._admission.offer(job, urgent=urgent)
        if not admitted:
            dropped = job
        elif shed is not None:  # the queue was full: the oldest ordinary request made room
            dropped = shed  # as if never received: a retransmission is evaluated
        else:
            return
        self._shared.cache.abandon(dropped.key)
        self.counters[names.overload] += 1
        what = f"{'Access' if isinstance(dropped, AccessJob) else 'Accounting'}-Request id={dropped.request.id}"
        self.drops.drop(OVERLOAD, dropped.client.name, dropped.addr, what, time.monotonic())
