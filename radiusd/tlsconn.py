"""One RadSec connection (RFC 6614) on a non-blocking TLS socket: its handshake, the packets framed out of its stream,
and the replies waiting to be written.

Only the TLS thread (tls.py) touches the TLS socket: an OpenSSL connection must not be read and written from two
threads at once. A reply decided by another thread comes through `sendto`, which queues it for the TLS thread and wakes
it; the TLS thread's own replies (Status-Server, duplicates) go straight into the write buffer.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Final

from otpbase.radius.framing import stream_length
from otpcore.config import ClientConfig

from .udp import Address, format_address

__all__ = ["ALPN_RADIUS10", "ALPN_RADIUS11", "MAX_UNSENT", "Connection", "peer_names"]

ALPN_RADIUS11: Final = "radius/1.1"  # RFC 9765
ALPN_RADIUS10: Final = "radius/1.0"
MAX_UNSENT = 1 << 20  # octets of replies a peer leaves unread before its connection is closed
_READ_SIZE = 1 << 16


class Connection:
    """`client` is set once the handshake is done and the peer matched a client; `radius11` when RADIUS/1.1 was
    negotiated. `last_active` (monotonic) moves with every request read."""

    def __init__(self, sock: ssl.SSLSocket, addr: Address, now: float, queue_reply: Callable[[Connection, bytes], None],
                 loop_thread: int) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.name = format_address(addr)
        self.client: ClientConfig | None = None
        self.names: frozenset[str] = frozenset()  # the certificate's (peer_names)
        self.radius11 = False
        self.events = 1  # what the selector watches for (selectors.EVENT_READ)
        self.opened = now
        self.last_active = now
        self.closed = False
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self._queue_reply = queue_reply
        self._loop_thread = loop_thread

    # -- from any thread ----------------------------------------------------------------------------------------------

    def sendto(self, data: bytes, addr: Address) -> None:
        """A reply to one of this connection's requests (the signature of socket.sendto, so that the deciding code
        sends to a connection as to a UDP socket)."""
        if threading.get_ident() == self._loop_thread:
            self.outbuf += data
        else:
            self._queue_reply(self, data)

    # -- from the TLS thread ------------------------------------------------------------------------------------------

    def handshake(self) -> bool:
        """One step of the handshake: True once it is done, False while it waits for the peer. Raises ssl.SSLError
        (or OSError) when it fails."""
        try:
            self.sock.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        return True

    def read(self) -> bool:
        """What the peer has sent, into `inbuf`; False when it closed the connection."""
        while True:
            try:
                chunk = self.sock.recv(_READ_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return True
            if not chunk:
                return False
            self.inbuf += chunk

    def packets(self) -> list[bytes]:
        """The whole packets read so far, taken out of `inbuf`. Raises Drop (malformed) when a Length field is out of
        bounds: the stream cannot be framed any further, so the connection must be closed (RFC 6613 §2.6.4)."""
        out: list[bytes] = []
        buf = self.inbuf
        start = 0
        while len(buf) - start >= 4:
            length = stream_length(buf[start:start + 4])
            if len(buf) - start < length:
                break
            out.append(bytes(buf[start:start + length]))
            start += length
        if start:
            del buf[:start]
        return out

    def write(self) -> bool:
        """Write what `outbuf` holds, as much as the socket takes; whether something is left for later."""
        while self.outbuf:
            try:
                sent = self.sock.send(self.outbuf)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return True
            del self.outbuf[:sent]
        return False

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()


def peer_names(cert: Mapping[str, object] | None) -> frozenset[str]:
    """The names a client's certificate (as getpeercert() gives it) answers to: its subject's common names and its
    subjectAltNames (DNS names also in lower case, as DNS compares them)."""
    if not cert:
        return frozenset()
    names: set[str] = set()
    subject = cert.get("subject", ())
    for rdn in subject if isinstance(subject, tuple) else ():
        for key, value in rdn:
            if key == "commonName":
                names.add(value)
    alt = cert.get("subjectAltName", ())
    for kind, value in alt if isinstance(alt, tuple) else ():
        names.add(value)
        if kind == "DNS":
            names.add(value.lower())
    return frozenset(names)
