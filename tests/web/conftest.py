"""Fixtures of the web door's suite: otp-web installations of their own (tests.kit.web), a real browser
(tests.kit.browser) and the real SMTP server (the kit's `smtp_server`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit.browser import Browser, chromium
from tests.kit.web import WebServer


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    """make(apps=..., web={...}, policy={...}, extra="...") -> a started WebServer; stopped after the test, where it
    must exit 0."""
    made: list[WebServer] = []

    def make(**kwargs: Any) -> WebServer:
        folder = tmp_path / f"web{len(made)}"
        folder.mkdir()
        server = WebServer(folder, **kwargs)
        made.append(server)
        return server.start()

    yield make
    for server in made:
        if server.proc is not None:
            assert server.stop() == 0, server.log()[-3000:]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium(tmp_path / "browser") as b:
        yield b
