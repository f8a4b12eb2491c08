"""Free loopback ports for servers the tests start."""

from __future__ import annotations

import random
import socket

__all__ = ["free_tcp_port", "free_udp_port"]


def _free_port(kind: socket.SocketKind, host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's pick; a server binds it moments later)."""
    return _free_port(socket.SOCK_STREAM, host)


def free_udp_port(host: str = "127.0.0.1", *, below: int = 65536) -> int:
    """A UDP port nothing is bound to right now. `below` for clients that cannot write every port (Debian's
    radiusplugin reads at most four digits: below=10000); the kernel picks from the ephemeral range otherwise."""
    if below >= 65536:
        return _free_port(socket.SOCK_DGRAM, host)
    for port in random.sample(range(2000, below), 200):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free UDP port below {below}")
