"""Fixtures for the accounting tests: a real otp-radiusd and a NAS socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.config import Client
from tests.kit.radiusd import RadiusServer

from .helpers import Udp


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RadiusServer]:
    """otp-radiusd on free loopback ports (authentication and accounting) with the client 127.0.0.1 / testing123."""
    srv = RadiusServer(tmp_path, clients=[Client("nas", "127.0.0.1")]).start()
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture
def nas(server: RadiusServer) -> Iterator[Udp]:
    udp = Udp(server.acct_port)
    yield udp
    udp.close()
