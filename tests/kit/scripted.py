"""A scripted UDP server on loopback: each datagram it receives goes to a handler, whose datagrams go back to the
sender (a RADIUS server, or one that misbehaves on purpose, for tests of clients)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence

__all__ = ["ScriptedServer"]


class ScriptedServer:
    """`handler(request) -> datagrams to answer with`, in a thread, until close(); `requests` holds all received."""

    def __init__(self, handler: Callable[[bytes], Sequence[bytes]]) -> None:
        self.handler = handler
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.requests.append(data)
            for reply in self.handler(data):
                self.sock.sendto(reply, peer)

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()
