"""The store's own suite runs against every backend: the `backend` fixture gives an Installation (tests/core/helpers.py)
whose store is SQLite in tmp_path, or a fresh PostgreSQL database on the session cluster (tests/kit/pgfixtures.py),
initialised through the Admin library. `store_config_lines` writes the [store] table for either."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otpcore.admin import Admin
from otpcore.config import load_config
from tests.kit.postgres import Database

from .helpers import Installation

BACKENDS = ["sqlite", "postgresql"]


def store_config_lines(folder: Path, database: Database | None) -> list[str]:
    """The [store] table: SQLite in `folder`, or the database (its password in a file beside the config)."""
    key = f'key_file = "{folder / "otp.key"}"'
    if database is None:
        return ["[store]", f'path = "{folder / "otp.sqlite"}"', key]
    password = folder / "db.password"
    password.write_text(database.password + "\n")
    password.chmod(0o600)
    return ["[store]", f'url = "{database.url}"', f'password_file = "{password}"', key]


def make_installation(folder: Path, database: Database | None, policy: str = "") -> Installation:
    path = folder / "otp.toml"
    path.write_text("\n".join([*store_config_lines(folder, database), "", "[policy]", policy]) + "\n")
    config = load_config(path)
    with Admin(config) as admin:
        admin.init()
    return Installation(folder, config)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Installation]:
    """An initialised store of each backend in turn (the test is run once per backend)."""
    database = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    installation = make_installation(tmp_path, database)
    yield installation
    for verifier in installation.verifiers:
        verifier.close()
