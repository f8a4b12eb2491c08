"""Fixtures of the packaging tests: the files in packaging/, the built .deb, the system it is installed on.

No __init__.py here on purpose: a package named `packaging` would shadow the PyPI one pytest itself imports.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
PKG = "otp-server"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """A systemd unit as {section: {key: [values in order]}} (keys may repeat; an empty value is kept)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"key outside a section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="session")
def unit() -> Unit:
    return parse_unit((PACKAGING / "otp-radiusd.service").read_text())


@pytest.fixture
def web_unit() -> Unit:
    return parse_unit((PACKAGING / "otp-web.service").read_text())


@pytest.fixture(scope="session")
def run() -> Callable[..., subprocess.CompletedProcess[str]]:
    """run(*argv, input=None, check=True, env=None): text output captured; a failure shows both streams."""

    def _run(*argv: str | os.PathLike[str], input: str | None = None, check: bool = True,
             env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv_s = [str(a) for a in argv]
        p = subprocess.run(argv_s, input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            pytest.fail(f"{' '.join(argv_s)} exited {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}")
        return p

    return _run


@pytest.fixture(scope="session")
def root() -> None:
    """The system tests install a package: CI runs them as root."""
    if os.geteuid() != 0:
        pytest.fail("the packaging system tests install a Debian package and must run as root (CI does)")


@pytest.fixture(scope="session")
def deb(root: None, require_tool: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory,
        run: Callable[..., subprocess.CompletedProcess[str]]) -> Iterator[Path]:
    """packaging/build-deb, into a temporary folder (the work tree's dist/ is left alone)."""
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "strip"):
        require_tool(tool)
    out = tmp_path_factory.mktemp("dist")
    p = run(PACKAGING / "build-deb", "--out", out)
    path = Path(p.stdout.strip().splitlines()[-1])
    assert path.parent == out and path.is_file(), p.stdout
    yield path
