"""A RADIUS client built by hand, so tests control every octet (with the codec's PAP hiding and HMAC-MD5, themselves
checked against the RFCs' examples and pyrad in tests/codec), and pyrad's own client, as a NAS would use it."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyrad import packet as rpacket

from otpbase.radius import ACCESS_REQUEST
from otpbase.radius.authenticators import authenticator_ok, hmac_md5, message_authenticator_ok
from otpbase.radius.pap import pap_hide
from radiusd.dictionary import load_dictionary

if TYPE_CHECKING:
    from .radiusd import RadiusServer

__all__ = [
    "ANSWER_TIMEOUT", "SECRET", "SILENCE_TIMEOUT", "Reply", "Sent", "UdpClient", "attribute_offsets", "attributes",
    "build_request", "check_reply", "parse_reply", "pyrad_client", "pyrad_login", "sign_request",
]

SECRET = b"testing123"
ANSWER_TIMEOUT = 10.0  # generous: other suites may load the machine; an answer returns at once anyway
SILENCE_TIMEOUT = 0.5  # how long "no answer" is waited for


def attribute_offsets(raw: bytes) -> list[int]:
    """Where each attribute of a packet starts, up to the first one whose length cannot be right."""
    offsets, pos = [], 20
    while pos + 2 <= len(raw) and raw[pos + 1] >= 2:
        offsets.append(pos)
        pos += raw[pos + 1]
    return offsets


def attributes(raw: bytes) -> list[tuple[int, bytes]]:
    """(type, value) of each attribute, in order."""
    return [(raw[pos], raw[pos + 2:pos + raw[pos + 1]]) for pos in attribute_offsets(raw)]


@dataclass
class Sent:
    raw: bytes
    id: int
    authenticator: bytes
    secret: bytes
    proxy_state: tuple[bytes, ...] = ()


def build_request(user: str | bytes | None, password: bytes | None, *, secret: bytes = SECRET, ident: int | None = None,
                  state: bytes | None = None, ma: bool = True, proxy_state: Sequence[bytes] = (),
                  code: int = ACCESS_REQUEST, extra: Sequence[tuple[int, bytes]] = ()) -> Sent:
    """An Access-Request (or Status-Server) with a Message-Authenticator first (`ma`), then the given attributes."""
    ident = os.urandom(1)[0] if ident is None else ident
    authenticator = os.urandom(16)
    attrs = b""
    if ma:
        attrs += bytes([80, 18]) + bytes(16)
    if user is not None:
        u = user.encode() if isinstance(user, str) else user
        attrs += bytes([1, 2 + len(u)]) + u
    if password is not None:
        hidden = pap_hide(password, secret, authenticator)
        attrs += bytes([2, 2 + len(hidden)]) + hidden
    if state is not None:
        attrs += bytes([24, 2 + len(state)]) + state
    attrs += bytes([4, 6]) + bytes([127, 0, 0, 1])  # NAS-IP-Address
    for t, v in extra:
        attrs += bytes([t, 2 + len(v)]) + v
    for ps in proxy_state:
        attrs += bytes([33, 2 + len(ps)]) + ps
    header = bytes([code, ident]) + (20 + len(attrs)).to_bytes(2, "big")
    raw = header + authenticator + attrs
    if ma:
        raw = raw[:22] + hmac_md5(secret, raw) + raw[38:]
    return Sent(raw, ident, authenticator, secret, tuple(proxy_state))


def sign_request(raw: bytes, secret: bytes) -> bytes:
    """Recompute the Message-Authenticator of a request whose first attribute is one."""
    return raw[:22] + hmac_md5(secret, raw[:22] + bytes(16) + raw[38:]) + raw[38:]


@dataclass
class Reply:
    raw: bytes
    code: int
    attrs: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, number: int) -> list[bytes]:
        return [v for t, v in self.attrs if t == number]

    @property
    def message(self) -> str:
        return b"".join(self.get(18)).decode()

    @property
    def state(self) -> bytes | None:
        values = self.get(24)
        return values[0] if values else None


def parse_reply(raw: bytes) -> Reply:
    return Reply(raw, raw[0], attributes(raw))


def check_reply(sent: Sent, raw: bytes) -> Reply:
    """Assert the reply is authentic: ID, Response Authenticator, and a valid Message-Authenticator first."""
    assert raw[1] == sent.id
    assert int.from_bytes(raw[2:4], "big") == len(raw)
    assert authenticator_ok(raw, sent.authenticator, sent.secret), "bad Response Authenticator"
    assert raw[20] == 80 and raw[21] == 18, "Message-Authenticator is not the first attribute"
    assert message_authenticator_ok(raw, 20, sent.secret, sent.authenticator), "bad Message-Authenticator"
    reply = parse_reply(raw)
    assert tuple(reply.get(33)) == sent.proxy_state, "Proxy-State not echoed unchanged and in order"
    return reply


class UdpClient:
    """One UDP socket bound to a loopback source address (127.0.0.1, 127.0.0.2, ... pick the client)."""

    def __init__(self, server: tuple[str, int], source: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in source else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.server = server

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, raw: bytes) -> None:
        self.sock.sendto(raw, self.server)

    def receive(self, timeout: float = ANSWER_TIMEOUT) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(8192)
        except TimeoutError:
            return None
        return data

    def exchange(self, sent: Sent, timeout: float = ANSWER_TIMEOUT) -> bytes | None:
        self.send(sent.raw)
        while True:
            data = self.receive(timeout)
            if data is None or data[1] == sent.id:
                return data

    def ask(self, sent: Sent, timeout: float = ANSWER_TIMEOUT) -> Reply:
        raw = self.exchange(sent, timeout)
        assert raw is not None, "no answer"
        return check_reply(sent, raw)


@contextlib.contextmanager
def pyrad_client(server: RadiusServer, secret: bytes = SECRET, timeout: float = ANSWER_TIMEOUT) -> Iterator[Any]:
    """pyrad's own client, as a NAS would use it (replies verified, Message-Authenticator enforced)."""
    from pyrad.client import Client as PyradClient

    client = PyradClient(server="127.0.0.1", authport=server.auth_port, secret=secret, dict=load_dictionary(),
                         enforce_ma=True, retries=1, timeout=timeout)
    try:
        yield client
    finally:
        client._CloseSocket()


def pyrad_login(client: Any, user: str, password: bytes, state: bytes | None = None) -> rpacket.Packet:
    req = client.CreateAuthPacket(code=rpacket.AccessRequest, User_Name=user)
    req["User-Password"] = req.PwCrypt(password)
    if state is not None:
        req["State"] = state
    req.add_message_authenticator()
    return client.SendPacket(req)
