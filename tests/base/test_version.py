"""`--version` on every command: the name and the version of the installed distribution, exit 0."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from otpbase import version
from tests.kit.tools import BIN

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
COMMANDS = ["otp-admin", "otp-radiusd", "otp-web"]


def test_every_console_script_is_covered() -> None:
    assert sorted(tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_version_prints_the_name_and_the_installed_version(command: str) -> None:
    expected = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    program = BIN / command
    p = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (0, f"{command} {expected}\n", "")
    help_text = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--version" in help_text


def test_without_the_distribution_the_line_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(version, "DISTRIBUTION", "otp-server-not-installed")
    assert version.version_line("otp-admin") == (
        "otp-admin (unknown version: the otp-server-not-installed distribution is not installed)")
