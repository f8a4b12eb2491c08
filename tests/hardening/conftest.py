"""Fixtures for the hardening suite: real otp-radiusd processes on free loopback ports (see kit.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .kit import HardServer


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., HardServer]]:
    """make_server(clients=..., workers=..., policy=..., args=...) -> a HardServer (not started). Whatever still runs
    at the end is stopped with SIGTERM and must exit 0."""
    made: list[HardServer] = []

    def factory(**kwargs: object) -> HardServer:
        sub = tmp_path / f"server{len(made)}"
        sub.mkdir()
        server = HardServer(sub, **kwargs)  # type: ignore[arg-type]
        made.append(server)
        return server

    yield factory
    for server in made:
        if server.proc is not None and server.proc.poll() is None:
            assert server.stop() == 0, server.log()[-3000:]
