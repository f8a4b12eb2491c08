"""Helpers of the core suite: configs in a temporary folder, the real `otp-admin` (reference codes are the kit's
OathTool, tests/kit/codes.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from otpcore import oath
from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import Config, Policy
from otpcore.seal import load_key_file
from otpcore.service import Verifier
from otpcore.store import open_store
from tests.kit.config import config_text
from tests.kit.tools import OTP_ADMIN

# RFC 4226 / RFC 6238 seeds.
SEED20 = b"12345678901234567890"
SEED32 = b"12345678901234567890123456789012"
SEED64 = b"1234567890123456789012345678901234567890123456789012345678901234"


def write_config(folder: Path, policy: Mapping[str, Any] | None = None) -> Path:
    """A TOML config whose store and key live in `folder`, with `policy` overrides."""
    path = folder / "otp.toml"
    path.write_text(config_text(folder=folder, policy=policy))
    return path


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the real otp-admin ------------------------------------------------------------------------------------------------


@dataclass
class Cli:
    """Runs `otp-admin --config CONFIG ...` in a subprocess."""

    folder: Path
    config: Path
    env: dict[str, str] = field(default_factory=lambda: {**os.environ, "LC_ALL": "C.UTF-8"})

    @property
    def store(self) -> Path:
        return self.folder / "otp.sqlite"

    @property
    def key(self) -> Path:
        return self.folder / "otp.key"

    def run(self, *args: str, stdin: str | None = None, umask: int = 0o022) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(OTP_ADMIN), "--config", str(self.config), *args], input=stdin, text=True,
                              capture_output=True, env=self.env, umask=umask, timeout=60)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Runs a command that must succeed; returns its stdout."""
        out = self.run(*args, stdin=stdin)
        assert out.returncode == 0, f"otp-admin {' '.join(args)} -> {out.returncode}: {out.stderr}"
        return out.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(OTP_ADMIN), "--config", str(self.config), *args], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)

    def set_policy(self, **policy: Any) -> None:
        write_config(self.folder, policy)


# -- in-process: the library with an explicit clock --------------------------------------------------------------------


@dataclass
class Installation:
    """A store and key in a temporary folder, provisioned through the Admin library."""

    folder: Path
    config: Config
    verifiers: list[Verifier] = field(default_factory=list)

    def admin(self) -> Admin:
        return Admin(self.config)

    def add_user(self, name: str, password: bytes | None = None, **kw: str) -> None:
        with self.admin() as admin:
            admin.add_user(UserSpec(name, password=password, **kw), now=0)

    def add_token(self, user: str, **spec: Any) -> int:
        with self.admin() as admin:
            return admin.add_token(user, TokenSpec(**spec), now=0).id

    def verifier(self, **policy: Any) -> Verifier:
        v = Verifier(open_store(self.config.store), load_key_file(self.config.store.key_file), Policy(**policy))
        self.verifiers.append(v)
        return v

    def token(self, token_id: int) -> Any:
        with self.admin() as admin:
            return admin.store.require_token(token_id)

    def user(self, name: str) -> Any:
        with self.admin() as admin:
            return admin.store.require_user(name)


def race_verify(config_path: str, user: str, code: str, now: float, barrier: Any, results: Any) -> None:
    """One contender of the race test (runs in its own process): open the store, wait for all, verify one code."""
    from otpcore.config import load_config

    try:
        verifier = Verifier.open(load_config(config_path))
        try:
            barrier.wait(timeout=60)
            decision = verifier.verify_code(user, code, door="race", client=str(os.getpid()), now=now)
            results.put((decision.verdict.value, decision.reason.value))
        finally:
            verifier.close()
    except BaseException as exc:  # reported to the test, which fails on it
        results.put(("error", repr(exc)))


# -- reading what otp-admin printed ---------------------------------------------------------------------------------

B32_20 = oath.encode_base32(SEED20)  # GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
B32_32 = oath.encode_base32(SEED32)
B32_64 = oath.encode_base32(SEED64)


def uri_of(output: str) -> tuple[str, dict[str, str]]:
    """The otpauth:// URI printed by `token add`: (label path, parameters)."""
    match = re.search(r"otpauth://\S+", output)
    assert match, output
    parts = urlsplit(match[0])
    return f"{parts.netloc}{unquote(parts.path)}", {k: v[0] for k, v in parse_qs(parts.query).items()}


def refused(out: subprocess.CompletedProcess[str], text: str = "") -> bool:
    """Exit 1 with one line on stderr (containing `text`)."""
    lines = out.stderr.splitlines()
    return out.returncode == 1 and len(lines) == 1 and text in lines[0]


def user_json(cli: Cli, name: str) -> dict[str, object]:
    return json.loads(cli.ok("user", "show", name, "--json"))
