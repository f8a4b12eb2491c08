"""Fixtures of the PostgreSQL suite: otp-radiusd nodes on one database (see kit.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .kit import DatabaseLike, PgServer


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Callable[..., PgServer]]:
    """make_node(database, clients=..., workers=..., policy=..., key_from=...) -> a PgServer (not started). The first
    node makes the key; pass `key_from=first.key_path` to the others. Whatever still runs at the end is stopped with
    SIGTERM and must exit 0."""
    made: list[PgServer] = []

    def factory(database: DatabaseLike, **kwargs: Any) -> PgServer:
        sub = tmp_path / f"node{len(made)}"
        sub.mkdir()
        node = PgServer(sub, database, **kwargs)
        made.append(node)
        return node

    yield factory
    for node in made:
        if node.proc is not None and node.proc.poll() is None:
            assert node.stop() == 0, node.log()[-3000:]
