"""Fixtures for the accounting tests: a real otp-radiusd and a NAS socket (see helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Server, Udp


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path)
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def nas(server: Server) -> Iterator[Udp]:
    udp = Udp(server.acct_port)
    yield udp
    udp.close()
