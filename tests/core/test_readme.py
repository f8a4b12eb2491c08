"""The README's provisioning examples run as written, in the order shown: its `sh` blocks, in one shell, in a
folder laid out like a source checkout (`.venv/bin` holding the real otp-admin, `try/otp.toml` the README's own
minimal config)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def provisioning_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of the section `## Provisioning with otp-admin` (sub-sections too)."""
    text = README.read_text()
    start = text.index("## Provisioning with `otp-admin`")
    end = text.index("\n## ", start)
    return BLOCK.findall(text[start:end])


def test_the_provisioning_examples_run_in_order(tmp_path: Path) -> None:
    blocks = provisioning_blocks()
    (config,) = [text for language, text in blocks if language == "toml"]
    script = "".join(text for language, text in blocks if language == "sh")
    assert script.startswith("export OTP_CONFIG=$PWD/try/otp.toml PATH=$PWD/.venv/bin:$PATH\notp-admin init ")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    (tmp_path / "try").mkdir()
    (tmp_path / "try" / "otp.toml").write_text(config)
    env = {"HOME": str(tmp_path), "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"}  # no OTP_CONFIG of the caller's
    out = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    assert out.stderr == ""  # not a warning either
    for expected in ("created store", "user alice added", "otpauth://totp/ACME:alice?", "token 2 added for bob",
                     "QR code written to bob.png", "code accepted", "token 2 of bob resynchronised",
                     "imported 1 token(s) for 1 user(s)"):
        assert expected in out.stdout, expected
    assert (tmp_path / "try" / "otp.sqlite").exists() and (tmp_path / "bob.png").stat().st_size > 0

    def admin(*args: str) -> list[dict[str, object]]:
        run = subprocess.run([".venv/bin/otp-admin", "--config", "try/otp.toml", *args, "--json"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    assert [(u["name"], u["email"], u["phone"], u["password"]) for u in admin("user", "list")] == [
        ("alice", "alice@example.org", None, True), ("bob", "bob@example.org", "+15550100", False),
        ("carol", "carol@example.org", None, False), ("dave", None, None, False), ("erin", None, None, True)]
    audit = admin("audit")
    assert [r["reason"] for r in audit if r["user"] == "bob"] == [
        "user_added", "contact_set", "token_added", "ok", "resync"]
