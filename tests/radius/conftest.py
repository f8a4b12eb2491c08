"""Fixtures for the RADIUS door tests (helpers live in helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import RadiusServer


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[type[RadiusServer]]:
    """Start servers with `make_server(clients=..., ...)`; each is stopped with SIGTERM and must exit 0."""
    started: list[RadiusServer] = []

    def factory(**kwargs: object) -> RadiusServer:
        sub = tmp_path / f"server{len(started)}"
        sub.mkdir()
        server = RadiusServer(sub, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield factory  # type: ignore[misc]
    for server in started:
        if server.proc is not None:
            assert server.stop() == 0, server.log()
