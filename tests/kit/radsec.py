"""RadSec (RADIUS over TLS) for the tests: throw-away certificates for otp-radiusd and its clients, the [radius] keys
that turn it on, and a client on Python's ssl module that speaks historic RadSec (RFC 6614) or RADIUS/1.1 (RFC 9765),
with the codec building and checking the packets.

No RADIUS/1.1 client is packaged in Debian 12 (radsecproxy 1.9 and FreeRADIUS 3.2.1 speak historic RadSec only), so
RADIUS/1.1 is tested with this one.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from otpbase.radius.constants import USER_NAME, USER_PASSWORD
from otpbase.radius.framing import attribute

from .certs import CertAuthority, make_ca
from .ports import free_tcp_port

__all__ = ["RADSEC_SECRET", "ClientFiles", "RadsecClient", "RadsecPki", "pap11", "radius11_request"]

RADSEC_SECRET = b"radsec"


@dataclass
class ClientFiles:
    cert: Path
    key: Path


class RadsecPki:
    """A CA that issued otp-radiusd's certificate and the clients', all written into `folder`; `other` is a CA
    nobody trusts (for the refused clients)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = make_ca("radsec test CA")
        self.other = make_ca("untrusted CA")
        self.ca_path = self.ca.write_cert(folder / "radsec-ca.pem")
        self.server_cert, self.server_key = folder / "radsec-server.pem", folder / "radsec-server.key"
        self.ca.issue_server().write(self.server_cert, self.server_key)
        self.port = free_tcp_port()

    def client(self, name: str, *, dns_names: tuple[str, ...] = (), ca: CertAuthority | None = None) -> ClientFiles:
        files = ClientFiles(self.folder / f"{name}.pem", self.folder / f"{name}.key")
        (ca or self.ca).issue_client(name, dns_names).write(files.cert, files.key)
        return files

    def radius_keys(self, idle_timeout: int | None = None) -> dict[str, object]:
        keys: dict[str, object] = {"tls_listen": [f"127.0.0.1:{self.port}"], "tls_cert": str(self.server_cert),
                                   "tls_key": str(self.server_key), "tls_ca": str(self.ca_path)}
        if idle_timeout is not None:
            keys["tls_idle_timeout"] = idle_timeout
        return keys


class RadsecClient:
    """One TLS connection to otp-radiusd with a client certificate; `alpn` names the protocols offered."""

    def __init__(self, pki: RadsecPki, files: ClientFiles, *, alpn: list[str] | None = None,
                 maximum: ssl.TLSVersion | None = None, timeout: float = 10.0, source: str = "127.0.0.1") -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=str(pki.ca_path))
        context.load_cert_chain(files.cert, files.key)
        if maximum is not None:
            context.maximum_version = maximum
        if alpn:
            context.set_alpn_protocols(alpn)
        raw = socket.create_connection(("127.0.0.1", pki.port), timeout=timeout, source_address=(source, 0))
        try:
            self.sock = context.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self._buffer = b""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def alpn(self) -> str | None:
        return self.sock.selected_alpn_protocol()

    def send(self, packet: bytes) -> None:
        self.sock.sendall(packet)

    def receive(self) -> bytes:
        """The next whole packet; ConnectionError when the server closed the connection."""
        while True:
            if len(self._buffer) >= 4:
                length = int.from_bytes(self._buffer[2:4])
                if len(self._buffer) >= length:
                    packet, self._buffer = self._buffer[:length], self._buffer[length:]
                    return packet
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self._buffer += chunk

    def ask(self, packet: bytes) -> bytes:
        self.send(packet)
        return self.receive()

    def closed_by_server(self, timeout: float) -> bool:
        """Whether the server closes the connection within `timeout` seconds (with nothing more sent to us)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False
        except (ssl.SSLError, OSError):
            return True


def radius11_request(code: int, token: bytes, attributes: Sequence[tuple[int, bytes]]) -> bytes:
    """A RADIUS/1.1 packet (RFC 9765 §4): Reserved-1 zero, the Token, twelve zero octets, the attributes as given."""
    body = b"".join(attribute(kind, value) for kind, value in attributes)
    length = 20 + len(body)
    return bytes((code, 0, length >> 8, length & 0xFF)) + token + bytes(12) + body


def pap11(user: str, password: bytes, token: bytes | None = None, *,
          extra: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """A RADIUS/1.1 PAP Access-Request: the password as it is (no hiding)."""
    return radius11_request(1, token or os.urandom(4), [(USER_NAME, user.encode()), (USER_PASSWORD, password),
                                                         *extra])

