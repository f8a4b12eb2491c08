"""Throw-away PAM services: /etc/pam.d/otp-test-<random> files, removed afterwards (nothing else there is touched),
and a pam_pwdfile password file, the stand-in for pam_unix."""

from __future__ import annotations

import contextlib
import ctypes
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from pam_module.pamconfig import auth_line

__all__ = ["PAM_D", "local_pam_service", "pam_service_file", "pwdfile_with"]

PAM_D = Path("/etc/pam.d")


@contextlib.contextmanager
def pam_service_file(lines: Sequence[str]) -> Iterator[str]:
    """A service whose file holds `lines`; yields its name."""
    name = f"otp-test-{secrets.token_hex(6)}"
    path = PAM_D / name
    path.write_text("".join(line + "\n" for line in lines))
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def local_pam_service(config: Path, *options: str) -> Iterator[str]:
    """A service with the local-mode module line otp-admin prints (plus `options`); yields its name."""
    with pam_service_file([auth_line("local", config=config, options=options)]) as name:
        yield name


def pwdfile_with(folder: Path, user: str, password: str) -> Path:
    """A pam_pwdfile password file (SHA-512 crypt from libcrypt, as /etc/shadow has)."""
    libcrypt = ctypes.CDLL("libcrypt.so.1")
    libcrypt.crypt.restype = ctypes.c_char_p
    salt = "$6$" + secrets.token_hex(8) + "$"
    crypted = libcrypt.crypt(password.encode(), salt.encode()).decode()
    path = folder / "passwd"
    path.write_text(f"{user}:{crypted}\n")
    return path
