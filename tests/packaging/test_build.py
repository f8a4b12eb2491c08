"""The project's own build: a wheel made from a copy of the sources (the work tree is left alone) with the metadata
of pyproject.toml, and not one warning from the build backend (they used to flood `./dev demo`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "state", "*.egg-info", "__pycache__",
                                     ".*_cache", ".hypothesis")


def test_the_wheel_builds_without_a_warning_and_carries_the_licence(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    shutil.copytree(REPO, src, ignore=NOT_SOURCES)
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                        "--wheel-dir", out, src], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    backend = [line for line in (p.stdout + p.stderr).splitlines() if "Warning" in line or "deprecated" in line]
    assert not backend, "\n".join(backend)

    (wheel,) = out.glob("otp_server-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(name.rsplit("/", 1)[0] for name in names if name.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(f"{info}/METADATA").decode())
    assert metadata["License-Expression"] == "MIT" and metadata["License"] is None
    assert metadata.get_all("License-File") == ["LICENSE"] and f"{info}/licenses/LICENSE" in names
