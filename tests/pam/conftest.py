"""Fixtures for the PAM door: a store provisioned with otp-admin, throw-away /etc/pam.d services driven by pamtester,
a real otp-radiusd on free loopback ports, and a scripted RADIUS server for unit tests of the client.

Service files are /etc/pam.d/otp-test-<random>, created and removed by the fixtures; nothing else there is touched.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from .pamkit import (
    PAM_D,
    SECRET,
    OtpEnv,
    RadiusClientSpec,
    Radiusd,
    ScriptedServer,
    free_port,
    status_server,
    venv_tool,
)


@pytest.fixture
def pam_service() -> Iterator[Callable[[Sequence[str]], str]]:
    """make(lines) -> service name: a /etc/pam.d/otp-test-<random> file removed after the test."""
    created: list[Path] = []

    def make(lines: Sequence[str]) -> str:
        name = f"otp-test-{secrets.token_hex(6)}"
        path = PAM_D / name
        path.write_text("".join(line + "\n" for line in lines))
        created.append(path)
        return name

    yield make
    for path in created:
        path.unlink(missing_ok=True)


@pytest.fixture
def otp(tmp_path: Path) -> OtpEnv:
    """A fresh config and store (otp-admin init); radius ports reserved, no client yet."""
    env = OtpEnv(tmp_path, policy={"max_failures": 3, "lockout_seconds": 0},
                 auth_port=free_port(), acct_port=free_port())
    env.clients.append(RadiusClientSpec())
    env.write_config()
    env.admin("init")
    return env


@pytest.fixture
def radiusd(otp: OtpEnv) -> Iterator[Callable[[], Radiusd]]:
    """start() -> a running otp-radiusd on otp's config (write the clients and policy first)."""
    running: list[Radiusd] = []

    def start() -> Radiusd:
        otp.write_config()
        log = otp.root / f"radiusd-{len(running)}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen([venv_tool("otp-radiusd"), "--config", str(otp.config)], stdout=fh, stderr=fh)
        server = Radiusd(proc, otp.auth_port, log)
        running.append(server)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"otp-radiusd exited with {proc.returncode}: {log.read_text()}")
            if status_server(otp.auth_port, otp.clients[0].secret.encode()):
                return server
            time.sleep(0.05)
        pytest.fail(f"otp-radiusd did not answer Status-Server: {log.read_text()}")

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "radius.secret"
    path.write_text(SECRET + "\n")
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
