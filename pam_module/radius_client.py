"""A small RADIUS client for the PAM door (RFC 2865 Access-Request, RFC 3579 Message-Authenticator).

Standard library only (hashlib, hmac, os, socket): a PAM login in radius mode must not import pyrad or the core.
Servers are tried in order; each gets the same packet `1 + retries` times (a retransmission the server's duplicate
cache answers bytes for bytes, so a code is never evaluated twice), then the next server gets a fresh packet.
A reply counts only if its Response Authenticator and its Message-Authenticator are right.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct
import time
from collections.abc import Sequence

__all__ = [
    "ACCESS_ACCEPT",
    "ACCESS_CHALLENGE",
    "ACCESS_REJECT",
    "ACCESS_REQUEST",
    "RadiusClient",
    "RadiusError",
    "RadiusReply",
    "RadiusUnavailable",
    "Server",
    "build_access_request",
    "hide_password",
    "parse_reply",
]

ACCESS_REQUEST = 1
ACCESS_ACCEPT = 2
ACCESS_REJECT = 3
ACCESS_CHALLENGE = 11
STATUS_SERVER = 12

USER_NAME = 1
USER_PASSWORD = 2
SERVICE_TYPE = 6
REPLY_MESSAGE = 18
STATE = 24
CALLING_STATION_ID = 31
NAS_IDENTIFIER = 32
NAS_PORT_TYPE = 61
MESSAGE_AUTHENTICATOR = 80

SERVICE_TYPE_AUTHENTICATE_ONLY = 8
NAS_PORT_TYPE_VIRTUAL = 5
MAX_PASSWORD = 128  # RFC 2865 5.2
MAX_PACKET = 4096

Server = tuple[str, int]


class RadiusError(Exception):
    """A request that cannot be built (a value too long for its attribute)."""


class RadiusUnavailable(RadiusError):
    """No server gave a valid answer in time."""


class RadiusReply:
    __slots__ = ("code", "messages", "server", "state")

    def __init__(self, code: int, messages: list[str], state: bytes | None, server: Server) -> None:
        self.code = code
        self.messages = messages
        self.state = state
        self.server = server

    @property
    def message(self) -> str:
        return "".join(self.messages)

    def __repr__(self) -> str:
        return f"RadiusReply(code={self.code}, messages={self.messages!r}, server={self.server!r})"


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 5.2: pad to a multiple of 16 and XOR with the MD5 chain of secret + authenticator."""
    if len(password) > MAX_PASSWORD:
        raise RadiusError("password longer than 128 bytes")
    padded = password.ljust(max(16, -(-len(password) // 16) * 16), b"\0")
    out = bytearray()
    previous = authenticator
    for i in range(0, len(padded), 16):
        key = hashlib.md5(secret + previous).digest()
        block = bytes(a ^ b for a, b in zip(padded[i:i + 16], key, strict=True))
        out += block
        previous = block
    return bytes(out)


def _attr(kind: int, value: bytes) -> bytes:
    if not 0 < len(value) <= 253:
        raise RadiusError(f"attribute {kind}: value of {len(value)} bytes")
    return bytes((kind, len(value) + 2)) + value


def build_access_request(ident: int, authenticator: bytes, secret: bytes, *, user: str, password: bytes,
                         nas_identifier: str, state: bytes | None = None, calling_station: str | None = None
                         ) -> bytes:
    """An Access-Request with the Message-Authenticator first, signed over the whole packet."""
    attrs = [
        _attr(MESSAGE_AUTHENTICATOR, b"\0" * 16),
        _attr(USER_NAME, user.encode()),
        _attr(USER_PASSWORD, hide_password(password, secret, authenticator)),
        _attr(NAS_IDENTIFIER, nas_identifier.encode()),
        _attr(SERVICE_TYPE, struct.pack("!I", SERVICE_TYPE_AUTHENTICATE_ONLY)),
        _attr(NAS_PORT_TYPE, struct.pack("!I", NAS_PORT_TYPE_VIRTUAL)),
    ]
    if calling_station:
        attrs.append(_attr(CALLING_STATION_ID, calling_station.encode()[:253]))
    if state is not None:
        attrs.append(_attr(STATE, state))
    body = b"".join(attrs)
    header = struct.pack("!BBH", ACCESS_REQUEST, ident, 20 + len(body)) + authenticator
    unsigned = header + body
    mac = hmac.new(secret, unsigned, "md5").digest()
    return header + body[:2] + mac + body[18:]


def _attributes(data: bytes) -> list[tuple[int, int, bytes]] | None:
    """(type, offset of the value, value) for each attribute, or None when the list is malformed."""
    out = []
    pos = 20
    while pos < len(data):
        if pos + 2 > len(data):
            return None
        kind, length = data[pos], data[pos + 1]
        if length < 2 or pos + length > len(data):
            return None
        out.append((kind, pos + 2, data[pos + 2:pos + length]))
        pos += length
    return out


def parse_reply(data: bytes, request: bytes, secret: bytes, server: Server) -> RadiusReply | None:
    """The reply to `request` if it is one and it is authentic, else None (a forged or stray packet is ignored)."""
    if len(data) < 20 or len(request) < 20:
        return None
    code, ident, length = struct.unpack("!BBH", data[:4])
    if ident != request[1] or code not in (ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE):
        return None
    if length < 20 or length > len(data):
        return None
    data = data[:length]
    request_auth = request[4:20]
    expected = hashlib.md5(data[:4] + request_auth + data[20:] + secret).digest()
    if not hmac.compare_digest(expected, data[4:20]):
        return None
    attrs = _attributes(data)
    if attrs is None:
        return None
    macs = [(offset, value) for kind, offset, value in attrs if kind == MESSAGE_AUTHENTICATOR]
    if len(macs) != 1 or len(macs[0][1]) != 16:
        return None  # required on every reply (RFC 3579 for Challenge; BlastRADIUS for Accept / Reject)
    offset, mac = macs[0]
    zeroed = data[:4] + request_auth + data[20:offset] + b"\0" * 16 + data[offset + 16:]
    if not hmac.compare_digest(hmac.new(secret, zeroed, "md5").digest(), mac):
        return None
    messages = [value.decode("utf-8", "replace") for kind, _, value in attrs if kind == REPLY_MESSAGE]
    states = [value for kind, _, value in attrs if kind == STATE]
    return RadiusReply(code, messages, states[0] if states else None, server)


class RadiusClient:
    """Sends one Access-Request at a time to the first server that answers."""

    def __init__(self, servers: Sequence[Server], secret: bytes, *, timeout: float = 3.0, retries: int = 1,
                 nas_identifier: str = "pam_otp") -> None:
        if not servers:
            raise RadiusError("no RADIUS server")
        if not secret:
            raise RadiusError("empty shared secret")
        self.servers = list(servers)
        self.secret = secret
        self.timeout = timeout
        self.retries = retries
        self.nas_identifier = nas_identifier
        self.failures: list[str] = []  # one line per server that did not answer, for the log

    def authenticate(self, user: str, password: bytes, *, state: bytes | None = None,
                     calling_station: str | None = None) -> RadiusReply:
        """The first valid reply, trying servers in order. RadiusUnavailable when none answers."""
        self.failures = []
        for server in self.servers:
            authenticator = os.urandom(16)
            packet = build_access_request(os.urandom(1)[0], authenticator, self.secret, user=user,
                                          password=password, nas_identifier=self.nas_identifier, state=state,
                                          calling_station=calling_station)
            try:
                reply = self._exchange(server, packet)
            except OSError as exc:
                self.failures.append(f"{server[0]}:{server[1]}: {exc.strerror or exc}")
                continue
            if reply is not None:
                return reply
            self.failures.append(f"{server[0]}:{server[1]}: no valid answer")
        raise RadiusUnavailable("no RADIUS server answered: " + "; ".join(self.failures))

    def _exchange(self, server: Server, packet: bytes) -> RadiusReply | None:
        host, port = server
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.connect(address)  # connected: an ICMP port unreachable fails over at once
            for _ in range(1 + self.retries):
                sock.send(packet)
                deadline = time.monotonic() + self.timeout
                while (left := deadline - time.monotonic()) > 0:
                    sock.settimeout(left)
                    try:
                        data = sock.recv(MAX_PACKET)
                    except TimeoutError:
                        break
                    reply = parse_reply(data, packet, self.secret, server)
                    if reply is not None:
                        return reply
        return None
