"""The kit's pytest fixtures, registered once for the whole suite (tests/conftest.py: `pytest_plugins`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from .mail import Certs, Mailbox, start_smtp
from .pamservices import pam_service_file
from .radiusd import RadiusServer
from .tools import tool

__all__ = ["make_server", "pam_service", "require_tool", "smtp_server"]


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], str]:
    """Returns the path of a system tool the test drives; a missing tool fails the test (it never skips)."""
    return tool


@pytest.fixture
def pam_service() -> Iterator[Callable[[Sequence[str]], str]]:
    """make(lines) -> the name of a /etc/pam.d/otp-test-<random> service holding those lines, removed after the
    test."""
    with contextlib.ExitStack() as services:

        def make(lines: Sequence[str]) -> str:
            return services.enter_context(pam_service_file(lines))

        yield make


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., RadiusServer]]:
    """make_server(clients=..., workers=..., policy=..., args=...) -> a RadiusServer (not started), each in a folder
    of its own. Whatever still runs at the end is stopped with SIGTERM and must exit 0."""
    made: list[RadiusServer] = []

    def factory(**kwargs: object) -> RadiusServer:
        folder = tmp_path / f"server{len(made)}"
        folder.mkdir()
        made.append(RadiusServer(folder, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield factory
    for server in made:
        if server.proc is not None:
            assert server.stop() == 0, server.log()[-3000:]


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Mailbox]]:
    """start(mode="plain" | "starttls" | "ssl", certs=None) -> a Mailbox: aiosmtpd on a free loopback port, stopped
    after the test."""
    controllers = []

    def start(mode: str = "plain", certs: Certs | None = None) -> Mailbox:
        box, controller = start_smtp(mode, certs)
        controllers.append(controller)
        return box

    yield start
    for controller in controllers:
        controller.stop()
