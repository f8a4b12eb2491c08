"""RadSec (RADIUS over TLS, RFC 6614; RADIUS/1.1 of RFC 9765 when the client offers it): the TLS thread of a worker.

One thread per worker serves every RadSec connection, with a selector over non-blocking TLS sockets: it accepts,
runs the handshakes, matches each peer to a client (its address and certificate), frames the packets out of the
streams, checks them (tlsreceive.py) and writes the replies. It never waits for a peer, so a slow or stalled peer
holds up nobody, and neither does the TLS work the UDP receiving thread: that thread's loop is left as it was, so the
UDP path is not slowed by RadSec (a selector shared with the UDP sockets would have put handshakes, TLS records and a
second kind of event in its way). One thread for all connections rather than one each: an OpenSSL connection must not
be read in one thread while another writes to it, so a thread per connection would still need a hand-off for the
replies, and thousands of idle connections would cost thousands of threads.

The requests go to the admission queue, where the evaluating threads decide them as they decide UDP ones (the same
decisions, audit rows and decision lines); their replies come back through the connection's `sendto`, which queues
them for this thread and wakes it. A connection is closed when its peer closes it or fails, when a packet fails
framing or authentication, when no request came for `tls_idle_timeout` seconds (a watchdog's Status-Server counts), when
its handshake takes longer than HANDSHAKE_TIMEOUT, or when its peer leaves more than MAX_UNSENT octets of replies
unread.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import socket
import ssl
import threading
import time

from otpbase.escape import escape
from otpbase.radius import MALFORMED, Drop

from .clients import ClientTable
from .droplog import DropLog
from .jobs import Counters
from .tlsconn import ALPN_RADIUS11, MAX_UNSENT, Connection, peer_names
from .tlsreceive import TlsReceiver
from .tlssetup import describe_error
from .udp import Address

__all__ = ["HANDSHAKE_TIMEOUT", "TLS_COUNTERS", "TlsServer"]

log = logging.getLogger("otp.radiusd")

HANDSHAKE_TIMEOUT = 10.0
HOUSEKEEPING_INTERVAL = 1.0
STOP_FLUSH_SECONDS = 2.0
# tls_open is the connections open now; the others count events
TLS_COUNTERS = ("tls_accepted", "tls_refused", "tls_closed_by_peer", "tls_closed_idle", "tls_closed_error",
                "tls_radius11", "tls_open")


class TlsServer:
    """The TLS thread. `start`, then `pause` (no new connection or request: the worker is stopping) and `stop` (the
    replies still queued are written, then every connection is closed); `reload` from the receiving thread."""

    def __init__(self, listeners: list[socket.socket], context: ssl.SSLContext, clients: ClientTable,
                 receiver: TlsReceiver, idle_timeout: float, label: str = "") -> None:
        self._listeners = listeners
        self._context = context
        self._clients = clients
        self._receiver = receiver
        self._idle_timeout = idle_timeout
        self._label = label
        self.counters: Counters = dict.fromkeys(TLS_COUNTERS, 0)  # written by the TLS thread
        self._conns: dict[int, Connection] = {}  # by file descriptor
        self._replies: collections.deque[tuple[Connection, bytes]] = collections.deque()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="tls", daemon=True)
        self._ident = 0  # the TLS thread's, once it runs
        self._reloaded = False
        self._paused = False
        self._stopping = False

    @property
    def drops(self) -> DropLog:
        return self._receiver.drops

    @property
    def receiver(self) -> TlsReceiver:
        return self._receiver

    # -- control, from the receiving thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def reload(self, context: ssl.SSLContext, clients: ClientTable, idle_timeout: float) -> None:
        """New connections use `context`; every open connection is matched again (closed if its client is gone)."""
        self._context, self._clients, self._idle_timeout = context, clients, idle_timeout
        self._reloaded = True
        self._wake()

    def pause(self) -> None:
        self._paused = True
        self._wake()

    def stop(self, timeout: float) -> None:
        self._stopping = True
        self._wake()
        self._thread.join(timeout)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe: the loop is awake anyway
            os.write(self._wake_w, b"\0")

    def _queue_reply(self, conn: Connection, data: bytes) -> None:
        """From a thread that decided a request of `conn` (Connection.sendto)."""
        self._replies.append((conn, data))
        self._wake()

    # -- the TLS thread -----------------------------------------------------------------------------------------------

    def _run(self) -> None:
        self._ident = threading.get_ident()
        selector = self._selector
        for sock in self._listeners:
            selector.register(sock, selectors.EVENT_READ, sock)
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL
        try:
            while not self._stopping:
                for key, mask in selector.select(HOUSEKEEPING_INTERVAL):
                    self._event(key.data, mask)
                self._write_replies()
                if self._reloaded:
                    self._reloaded = False
                    self._rematch()
                now = time.monotonic()
                if now >= next_housekeeping:
                    self._housekeeping(now)
                    next_housekeeping = now + HOUSEKEEPING_INTERVAL
            self._flush_on_stop()
        except Exception:
            log.exception("the TLS thread failed: RadSec is down%s", self._label)
        finally:
            for conn in list(self._conns.values()):
                self._close(conn, "", "")
            selector.close()

    def _event(self, data: object, mask: int) -> None:
        if data is None:
            with contextlib.suppress(OSError):
                while os.read(self._wake_r, 512):
                    pass
        elif isinstance(data, Connection):
            self._service(data, mask)
        elif isinstance(data, socket.socket):
            self._accept(data)

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(64):
            try:
                raw, addr = listener.accept()
            except OSError:  # BlockingIOError: none left; EMFILE and the like: the next pass tries again
                return
            if self._paused or self._clients.lookup(addr[0]) is None:  # refused before any TLS work
                raw.close()
                if not self._paused:
                    self._refused(addr, "unknown_client", "no [[radius.clients]] entry matches this address")
                continue
            raw.setblocking(False)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # a peer that vanished is found out
            try:
                tls = self._context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            conn = Connection(tls, addr, time.monotonic(), self._queue_reply, self._ident)
            self._conns[conn.fd] = conn
            self.counters["tls_accepted"] += 1
            self.counters["tls_open"] = len(self._conns)
            self._selector.register(tls, selectors.EVENT_READ, conn)

    def _service(self, conn: Connection, mask: int) -> None:
        try:
            if conn.client is None:
                if not conn.handshake():
                    return
                if not self._matched(conn):
                    return
            if mask & selectors.EVENT_READ:  # after the handshake too: requests may have come with its last flight
                open_ = conn.read()
                if self._paused:
                    conn.inbuf.clear()
                elif not self._dispatch(conn):
                    return
                if not open_:
                    self._close(conn, "tls_closed_by_peer", "closed by the peer")
                    return
            self._write(conn)
        except (ssl.SSLError, OSError) as exc:
            if conn.client is None:
                self._refused(conn.addr, "tls_handshake", f"the TLS handshake failed: {describe_error(exc)}", conn)
            else:
                self._close(conn, "tls_closed_error", f"failed: {describe_error(exc)}")

    def _matched(self, conn: Connection) -> bool:
        """After the handshake: the client this peer is (False: refused, closed), and the protocol."""
        tls = conn.sock
        conn.names = peer_names(tls.getpeercert())
        client = self._clients.lookup_tls(conn.addr[0], conn.names)
        subject = escape(",".join(sorted(conn.names)) or "-", space=True)
        if client is None:
            self._refused(conn.addr, "tls_subject", f"no client of this address has a tls_subject among the "
                          f"certificate's names ({subject})", conn)
            return False
        if tls.selected_alpn_protocol() == ALPN_RADIUS11:
            if tls.version() != "TLSv1.3":  # RFC 9765 §3.4
                self._refused(conn.addr, "tls_protocol", "RADIUS/1.1 offered over TLS older than 1.3", conn)
                return False
            conn.radius11 = True
            self.counters["tls_radius11"] += 1
        conn.client = client
        log.info("radsec connection from=%s client=%s names=%s protocol=%s %s%s", conn.name, client.name, subject,
                 tls.version(), ALPN_RADIUS11 if conn.radius11 else "radius/1.0", self._label)
        return True

    def _dispatch(self, conn: Connection) -> bool:
        """The packets read, to the receiver; False when the connection was closed for one of them."""
        client = conn.client
        assert client is not None
        try:
            packets = conn.packets()
        except Drop:
            self._receiver.counters[MALFORMED] += 1
            self._receiver.dropped(MALFORMED, client.name, bytes(conn.inbuf[:4]), conn.addr)
            self._close(conn, "tls_closed_error", "a packet's Length field is out of bounds")
            return False
        if packets:
            conn.last_active = time.monotonic()
        for packet in packets:
            try:
                keep = self._receiver.packet(conn, packet)
            except Exception:  # nothing a client sends may stop the thread
                self._receiver.counters["errors"] += 1
                log.exception("unexpected error handling a packet%s", self._label)
                keep = True
            if not keep:
                self._close(conn, "tls_closed_error", "a request failed its checks (see the dropped request line)")
                return False
        return True

    def _write(self, conn: Connection) -> None:
        """Write what is waiting; watch for writability while something is left, close a peer that reads nothing."""
        left = conn.write()
        if left and len(conn.outbuf) > MAX_UNSENT:
            self._close(conn, "tls_closed_error", f"more than {MAX_UNSENT} octets of replies left unread")
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if left else 0)
        if events != conn.events:
            conn.events = events
            self._selector.modify(conn.sock, events, conn)

    def _write_replies(self) -> None:
        """The replies the evaluating threads queued, each into its connection."""
        touched: dict[int, Connection] = {}
        while self._replies:
            conn, data = self._replies.popleft()
            if not conn.closed:
                conn.outbuf += data
                touched[conn.fd] = conn
        for conn in touched.values():
            try:
                self._write(conn)
            except (ssl.SSLError, OSError) as exc:
                self._close(conn, "tls_closed_error", f"failed: {describe_error(exc)}")

    def _housekeeping(self, now: float) -> None:
        for conn in list(self._conns.values()):
            if conn.client is None:
                if now - conn.opened > HANDSHAKE_TIMEOUT:
                    self._refused(conn.addr, "tls_handshake", f"no TLS handshake in {HANDSHAKE_TIMEOUT:g} s", conn)
            elif now - conn.last_active > self._idle_timeout:
                self._close(conn, "tls_closed_idle", f"idle for {self._idle_timeout:g} s (radius.tls_idle_timeout)")

    def _rematch(self) -> None:
        for conn in list(self._conns.values()):
            if conn.client is not None:
                client = self._clients.lookup_tls(conn.addr[0], conn.names)
                if client is None:
                    self._close(conn, "tls_closed_error", "its client is no longer configured")
                else:
                    conn.client = client

    def _refused(self, addr: Address, reason: str, why: str, conn: Connection | None = None) -> None:
        self.counters["tls_refused"] += 1
        self.drops.drop(reason, addr[0], addr, f"RadSec connection: {why}", time.monotonic())
        if conn is not None:
            self._close(conn, "", "")

    def _close(self, conn: Connection, counter: str, why: str) -> None:
        """`counter` and `why` empty: closed without a line of its own (a refusal has its line already)."""
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        self._conns.pop(conn.fd, None)
        conn.close()
        self.counters["tls_open"] = len(self._conns)
        if counter:
            self.counters[counter] += 1
            client = conn.client.name if conn.client is not None else "-"
            log.info("radsec connection closed: from=%s client=%s reason=%s%s", conn.name, client, why, self._label)

    def _flush_on_stop(self) -> None:
        """The replies still queued, written within STOP_FLUSH_SECONDS."""
        deadline = time.monotonic() + STOP_FLUSH_SECONDS
        for sock in self._listeners:
            self._selector.unregister(sock)
        self._write_replies()
        while time.monotonic() < deadline and any(conn.outbuf for conn in self._conns.values()):
            for key, _ in self._selector.select(0.05):
                if isinstance(key.data, Connection):
                    with contextlib.suppress(ssl.SSLError, OSError):
                        key.data.write()
