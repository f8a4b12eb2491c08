"""Free loopback TCP ports and the network faults a client must survive: a port that refuses, a server that accepts
and never answers, and a port whose connection never completes.

Each fault holds its socket for the duration of the `with` block, so no other process can take the port meanwhile,
and closes it afterwards whatever happened.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

from .ports import free_tcp_port

__all__ = ["HOST", "closed_port", "free_tcp_port", "silent_server", "unanswered_port"]

HOST = "127.0.0.1"


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port that refuses connections at once (RST): bound, so nobody else takes it, but never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((HOST, 0))
        yield int(held.getsockname()[1])


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts every TCP connection and never sends a byte (a hung server, or TLS to a plain port
    that never answers). Yields the port; the listener and every accepted connection close on exit."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(64)
    stop = threading.Event()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=_accept_forever, args=(listener, stop, accepted), daemon=True,
                              name="silent-server")
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in accepted:
            conn.close()


def _accept_forever(listener: socket.socket, stop: threading.Event, accepted: list[socket.socket]) -> None:
    while not stop.is_set():
        ready, _, _ = select.select([listener], [], [], 0.05)
        if ready:
            conn, _ = listener.accept()
            accepted.append(conn)  # held open, never read from nor written to


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port where connect() never completes (a firewall that drops packets, a host that is off): a listener with
    a backlog of one, filled by our own connection and never accepted. Linux then drops further SYNs (with the
    default net.ipv4.tcp_abort_on_overflow = 0), so a client waits until its connect timeout."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((HOST, 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        filler.settimeout(5)
        filler.connect((HOST, port))
        yield port
    finally:
        filler.close()
        listener.close()
