"""A small RADIUS client for the PAM door: one Access-Request at a time, servers tried in order.

Standard library only (the codec in otpbase.radius, os, socket, time): a PAM login in radius mode must not import
pyrad or the core. The packets are the codec's (`otpbase.radius.client`): the Message-Authenticator first in every
request, and a reply counts only if its Response Authenticator and its Message-Authenticator are right.
Each server gets the same packet `1 + retries` times (a retransmission the server's duplicate cache answers bytes
for bytes, so a code is never evaluated twice), then the next server gets a fresh packet.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence

from otpbase.radius import MAX_PACKET, Drop
from otpbase.radius.client import Reply, access_request, decode_reply
from otpbase.radius.constants import (
    CALLING_STATION_ID,
    MAX_VALUE,
    NAS_IDENTIFIER,
    NAS_PORT_TYPE,
    NAS_PORT_TYPE_VIRTUAL,
    SERVICE_TYPE,
    SERVICE_TYPE_AUTHENTICATE_ONLY,
    STATE,
)

__all__ = ["RadiusClient", "RadiusError", "RadiusReply", "RadiusUnavailable", "Server", "build_access_request"]

Server = tuple[str, int]


class RadiusError(Exception):
    """A request that cannot be built (a value too long for its attribute)."""


class RadiusUnavailable(RadiusError):
    """No server gave a valid answer in time."""


class RadiusReply(Reply):
    """A checked reply, and the server that gave it."""

    __slots__ = ("server",)

    def __init__(self, reply: Reply, server: Server) -> None:
        super().__init__(reply.code, reply.message, reply.state)
        self.server = server

    def __repr__(self) -> str:
        return f"RadiusReply(code={self.code}, message={self.message!r}, server={self.server!r})"


def build_access_request(ident: int, authenticator: bytes, secret: bytes, *, user: str, password: bytes,
                         nas_identifier: str, state: bytes | None = None, calling_station: str | None = None
                         ) -> bytes:
    """The Access-Request of a login: PAP, Service-Type Authenticate-Only, NAS-Port-Type Virtual, the NAS-Identifier
    (the PAM service), the client's address as Calling-Station-Id, and the State of a challenge being answered.
    RadiusError when a value does not fit its attribute (a password over 128 octets, say)."""
    attributes = [(NAS_IDENTIFIER, nas_identifier.encode()),
                  (SERVICE_TYPE, SERVICE_TYPE_AUTHENTICATE_ONLY.to_bytes(4, "big")),
                  (NAS_PORT_TYPE, NAS_PORT_TYPE_VIRTUAL.to_bytes(4, "big"))]
    if calling_station:
        attributes.append((CALLING_STATION_ID, calling_station.encode()[:MAX_VALUE]))
    if state is not None:
        attributes.append((STATE, state))
    try:
        return access_request(ident, authenticator, secret, user=user, password=password, attributes=attributes)
    except ValueError as exc:
        raise RadiusError(str(exc)) from None


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
                return RadiusReply(reply, server)
            self.failures.append(f"{server[0]}:{server[1]}: no valid answer")
        raise RadiusUnavailable("no RADIUS server answered: " + "; ".join(self.failures))

    def _exchange(self, server: Server, packet: bytes) -> Reply | None:
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
                    try:
                        return decode_reply(data, packet, self.secret)
                    except Drop:
                        continue  # a forged or stray packet: ignored
        return None
