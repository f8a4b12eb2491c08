"""Fixtures for the PAM door: a store provisioned with otp-admin, a real otp-radiusd on free loopback ports, and a
scripted RADIUS server for unit tests of the client (the throw-away /etc/pam.d services are the kit's `pam_service`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.kit.config import Client
from tests.kit.ports import free_udp_port
from tests.kit.radius_client import SECRET
from tests.kit.radiusd import Radiusd
from tests.kit.scripted import ScriptedServer

from .pamkit import OtpEnv


@pytest.fixture
def otp(tmp_path: Path) -> OtpEnv:
    """A fresh config and store (otp-admin init); radius ports reserved, no client yet."""
    env = OtpEnv(tmp_path, policy={"max_failures": 3, "lockout_seconds": 0},
                 auth_port=free_udp_port(), acct_port=free_udp_port())
    env.clients.append(Client("pam", "127.0.0.1", first_factor="none"))
    env.write_config()
    env.admin("init")
    return env


@pytest.fixture
def radiusd(otp: OtpEnv) -> Iterator[Callable[[], Radiusd]]:
    """start() -> a running otp-radiusd on otp's config (write the clients and policy first)."""
    running: list[Radiusd] = []

    def start() -> Radiusd:
        otp.write_config()
        running.append(Radiusd(otp.config, otp.root / f"radiusd-{len(running)}.log").start())
        return running[-1]

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "radius.secret"
    path.write_text(SECRET.decode() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def scripted_server() -> Iterator[Callable[[Callable[[bytes], Sequence[bytes]]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(handler: Callable[[bytes], Sequence[bytes]]) -> ScriptedServer:
        servers.append(ScriptedServer(handler))
        return servers[-1]

    yield make
    for s in servers:
        s.close()
