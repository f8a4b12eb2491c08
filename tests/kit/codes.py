"""Reference one-time codes from oath-toolkit's `oathtool`, never from the code under test, and secrets to make them
from. A secret is bytes, or the base32 text a user types (what otp-admin prints and accepts)."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import time
from dataclasses import dataclass

from .tools import tool

__all__ = ["OathTool", "new_secret", "oathtool", "totp", "totp_after", "wrong_totp"]

PERIOD = 30


@dataclass(frozen=True)
class OathTool:
    """`oathtool` at `path`."""

    path: str

    def totp(self, secret: bytes | str, now: float, *, algorithm: str = "SHA1", digits: int = 6,
             period: int = PERIOD, t0: int = 0) -> str:
        args = [f"--totp={algorithm.lower()}", f"--digits={digits}", f"--time-step-size={period}",
                f"--now=@{int(now)}"]
        if t0:
            args.append(f"--start-time=@{t0}")
        return self._run(args, secret)

    def hotp(self, secret: bytes | str, counter: int, *, digits: int = 6) -> str:
        return self._run(["--hotp", f"--digits={digits}", f"--counter={counter}"], secret)

    def _run(self, options: list[str], secret: bytes | str) -> str:
        key = ["--base32", secret] if isinstance(secret, str) else [secret.hex()]
        out = subprocess.run([self.path, *options, *key], capture_output=True, text=True, check=True)
        return out.stdout.strip()


def oathtool() -> OathTool:
    return OathTool(tool("oathtool"))


def totp(secret_b32: str, at: float | None = None, *, digits: int = 6) -> str:
    """The code of the time step holding `at` (default: now)."""
    return oathtool().totp(secret_b32, time.time() if at is None else at, digits=digits)


def totp_after(secret_b32: str, steps: int = 0, now: float | None = None) -> str:
    """The code of the time step `steps` steps after the one holding `now` (default: now; before it when negative)."""
    return totp(secret_b32, (time.time() if now is None else now) + PERIOD * steps)


def wrong_totp(secret_b32: str, now: float | None = None) -> str:
    """A well-formed 6-digit code that no time step near `now` (default: now) has."""
    near = {totp_after(secret_b32, k, now) for k in range(-3, 4)}
    while True:
        code = f"{secrets.randbelow(10**6):06d}"
        if code not in near:
            return code


def new_secret() -> str:
    """A random 160-bit secret in base32, as `otp-admin token add --secret` takes it."""
    return base64.b32encode(os.urandom(20)).decode()
