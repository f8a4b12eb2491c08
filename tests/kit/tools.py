"""The programs the tests drive for real: this environment's console scripts (otp-admin, otp-radiusd) and the system
tools ./dev test installs (radclient, pamtester, oathtool, openvpn, ...). A missing tool fails the test: it never
skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["BIN", "OTP_ADMIN", "find_tool", "otp_admin", "tool"]

BIN = Path(sys.executable).parent  # the console scripts of the environment under test
OTP_ADMIN = BIN / "otp-admin"
_SEARCH = os.pathsep.join([str(BIN), os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])  # sbin: not on every PATH


def find_tool(name: str) -> str | None:
    """The path of a program, this environment's first; None when it is not installed."""
    return shutil.which(name, path=_SEARCH)


def tool(name: str) -> str:
    """The path of a program a test drives; a missing one fails the test."""
    path = find_tool(name)
    if path is None:
        pytest.fail(f"required tool {name!r} is not installed (./dev test installs it)")
    return path


def otp_admin(config: Path, *args: str, stdin: str | None = None, timeout: float = 60
              ) -> subprocess.CompletedProcess[str]:
    """`otp-admin --config CONFIG ARGS...`, the real command, its output captured as text."""
    return subprocess.run([str(OTP_ADMIN), "--config", str(config), *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout)
