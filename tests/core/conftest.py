"""Fixtures of the core suite."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otpcore.admin import Admin
from otpcore.config import load_config
from tests.kit.codes import OathTool

from .helpers import Cli, Installation, write_config


@pytest.fixture(scope="session")
def oathtool(require_tool: Callable[[str], str]) -> OathTool:
    return OathTool(require_tool("oathtool"))


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A fresh installation for the real `otp-admin` (config written, store not yet initialised), max_failures 3."""
    return Cli(tmp_path, write_config(tmp_path, {"max_failures": 3}))


@pytest.fixture(scope="session")
def alice_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once with the real CLI: `otp-admin init`, then user alice added with a password."""
    folder = tmp_path_factory.mktemp("alice-template")
    cli = Cli(folder, write_config(folder))
    cli.ok("init")
    cli.ok("user", "add", "alice", "--password-stdin", stdin="s3cret\n")
    return folder


@pytest.fixture
def cli_alice(cli: Cli, alice_template: Path) -> Cli:
    """`otp-admin init` done and user alice added with a password (a copy of the template, modes kept)."""
    for name in ("otp.sqlite", "otp.key"):
        shutil.copy2(alice_template / name, cli.folder / name)
    return cli


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Installation]:
    """A store and key initialised through the Admin library, for in-process tests with an explicit clock."""
    config = load_config(write_config(tmp_path))
    with Admin(config) as admin:
        admin.init()
    installation = Installation(tmp_path, config)
    yield installation
    for v in installation.verifiers:
        v.close()
