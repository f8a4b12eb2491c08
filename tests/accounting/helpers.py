"""Accounting-Requests built by hand, so the tests control every octet (with the codec's HMAC-MD5 and
authenticators, themselves checked against the RFCs' examples and pyrad in tests/codec), and a NAS's socket to send
them to a real otp-radiusd (the kit's RadiusServer) with."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from collections.abc import Sequence

from otpbase.radius.authenticators import (
    ZERO16,
    accounting_request_authenticator,
    authenticator_ok,
    hmac_md5,
    message_authenticator_ok,
)
from otpbase.radius.constants import (
    ACCT_DELAY_TIME,
    ACCT_SESSION_ID,
    ACCT_STATUS_TYPE,
    MESSAGE_AUTHENTICATOR,
    NAS_IP_ADDRESS,
    USER_NAME,
)
from tests.kit.radius_client import SECRET, attributes

Attr = tuple[int, bytes]


def integer(n: int) -> bytes:
    return n.to_bytes(4, "big")


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def session_attrs(status: int, session_id: str = "sess-1", *, user: str | None = "alice", nas: str = "192.0.2.1",
                  delay: int | None = None, extra: Sequence[Attr] = ()) -> list[Attr]:
    attrs: list[Attr] = [(ACCT_STATUS_TYPE, integer(status)), (ACCT_SESSION_ID, session_id.encode()),
                         (NAS_IP_ADDRESS, ip(nas))]
    if user is not None:
        attrs.append((USER_NAME, user.encode()))
    if delay is not None:
        attrs.append((ACCT_DELAY_TIME, integer(delay)))
    return attrs + list(extra)


def accounting_request(attrs: Sequence[Attr], *, secret: bytes = SECRET, ident: int = 7, ma: bool = False,
                       code: int = 4) -> bytes:
    """RFC 2866 §3 by hand. With `ma`, a Message-Authenticator first, computed with a zero Request Authenticator."""
    body = b"".join(bytes((t, len(v) + 2)) + v for t, v in attrs)
    if ma:
        body = bytes((MESSAGE_AUTHENTICATOR, 18)) + bytes(16) + body
    header = bytes((code, ident)) + (20 + len(body)).to_bytes(2, "big")
    if ma:
        body = body[:2] + hmac_md5(secret, header + ZERO16 + body) + body[18:]
    unsigned = header + ZERO16 + body
    return header + accounting_request_authenticator(unsigned, secret) + body


def status_server(*, secret: bytes = SECRET, ident: int = 9, authenticator: bytes = b"A" * 16, ma: bool = True
                  ) -> bytes:
    body = bytes((MESSAGE_AUTHENTICATOR, 18)) + bytes(16) if ma else b""
    header = bytes((12, ident)) + (20 + len(body)).to_bytes(2, "big")
    if ma:
        body = body[:2] + hmac_md5(secret, header + authenticator + body)
    return header + authenticator + body


def check_response(request: bytes, raw: bytes, secret: bytes = SECRET) -> list[Attr]:
    """An authentic Accounting-Response to `request`: code, ID, Length, Response Authenticator (computed with the
    Request Authenticator), and a valid Message-Authenticator as the first attribute (computed with a zero
    authenticator, or the request's for a Status-Server, as FreeRADIUS and pyrad check it)."""
    assert raw[0] == 5
    assert raw[1] == request[1]
    assert int.from_bytes(raw[2:4], "big") == len(raw)
    authenticator = request[4:20]
    assert authenticator_ok(raw, authenticator, secret)
    assert raw[20:22] == bytes((MESSAGE_AUTHENTICATOR, 18)), "Message-Authenticator is not the first attribute"
    assert message_authenticator_ok(raw, 20, secret, authenticator if request[0] == 12 else ZERO16)
    return attributes(raw)


def radclient_acct(radclient: str, port: int, attributes: str) -> str:
    """One Accounting-Request sent by FreeRADIUS's radclient (`attributes`: its input, one `Name = value` a line);
    returns its output, which must show the Accounting-Response."""
    out = subprocess.run([radclient, "-x", "-r", "1", "-t", "5", f"127.0.0.1:{port}", "acct", SECRET.decode()],
                         input=attributes, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "Received Accounting-Response" in out.stdout, out.stdout + out.stderr
    return out.stdout


class Udp:
    """A NAS's socket: fixed source port, so a resent datagram is a true retransmission."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.server = ("127.0.0.1", port)

    def close(self) -> None:
        self.sock.close()

    def ask(self, raw: bytes, timeout: float = 5.0) -> bytes | None:
        self.sock.sendto(raw, self.server)
        self.sock.settimeout(timeout)
        try:
            while True:
                data, _ = self.sock.recvfrom(4096)
                if data[1] == raw[1]:
                    return data
        except TimeoutError:
            return None
