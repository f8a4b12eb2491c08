"""Secrets and codes read from standard input: a command line is visible to every local user (`ps`,
/proc/PID/cmdline), standard input is not."""

from __future__ import annotations

import sys

from otpcore.errors import InputError

__all__ = ["or_stdin", "read_line", "read_password"]


def read_line(what: str) -> str:
    """The next line of standard input, stripped; an empty one is refused."""
    line = sys.stdin.buffer.readline().strip()
    if not line:
        raise InputError(f"no {what} on standard input")
    try:
        return line.decode()
    except UnicodeDecodeError:
        raise InputError(f"the {what} on standard input is not valid UTF-8") from None


def or_stdin(value: str, what: str) -> str:
    """A command-line value, or the next line of standard input when it is `-` (`token resync NAME - -` reads two)."""
    return read_line(what) if value == "-" else value


def read_password() -> bytes:
    """The first line of standard input as bytes (a password need not be UTF-8); an empty one is refused."""
    line = sys.stdin.buffer.readline().rstrip(b"\r\n")
    if not line:
        raise InputError("empty password on standard input")
    return line
