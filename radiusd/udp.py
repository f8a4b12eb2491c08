"""The worker's sockets: binding them (one set per worker, sharing each port: UDP, and the RadSec listeners), sending
UDP, naming addresses."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Address", "Sender", "bind_sockets", "format_address", "send"]

Address = Any  # a peer as recvfrom() gives it: (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6


class Sender(Protocol):
    """Where a reply goes: a UDP socket, or a RadSec connection (tlsconn.Connection)."""

    def sendto(self, data: bytes, addr: Address, /) -> object: ...


def send(sock: Sender, data: bytes, addr: Address) -> None:
    with contextlib.suppress(OSError):  # a full send buffer or an unreachable client: the client retransmits
        sock.sendto(data, addr)


def format_address(addr: Address) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_sockets(listen: Sequence[tuple[str, int]], copies: int, kind: int = socket.SOCK_DGRAM
                 ) -> list[list[socket.socket]]:
    """`copies` sets of sockets on the listen addresses: UDP, or with kind=SOCK_STREAM TCP sockets listening (not
    blocking); several copies share each port with SO_REUSEPORT.

    IPv6 sockets are IPv6-only, so `0.0.0.0:1812` and `[::]:1812` can both be listed. Raises OSError with the
    address in the message.
    """
    sets: list[list[socket.socket]] = []
    try:
        for _ in range(copies):
            socks: list[socket.socket] = []
            sets.append(socks)
            for host, port in listen:
                socks.append(_bind(host, port, kind, shared=copies > 1))
    except BaseException:
        for socks in sets:
            for sock in socks:
                sock.close()
        raise
    return sets


def _bind(host: str, port: int, kind: int, *, shared: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    stream = kind == socket.SOCK_STREAM
    try:
        if stream:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if not stream:
            with contextlib.suppress(OSError):  # room for a burst (the kernel caps it at net.core.rmem_max)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {format_address((host, port))}: {exc.strerror}") from None
        if stream:
            sock.listen(128)
            sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
