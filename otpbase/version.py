"""`--version` for every command: `otp-admin 0.1.0`, from the installed distribution's metadata.

The metadata is read only when the option is given: importing importlib.metadata costs about 20 ms, which every
other run of a command would pay for nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

__all__ = ["DISTRIBUTION", "VersionAction", "version_line"]

DISTRIBUTION = "otp-server"


def version_line(prog: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{prog} {version(DISTRIBUTION)}"
    except PackageNotFoundError:
        return f"{prog} (unknown version: the {DISTRIBUTION} distribution is not installed)"


class VersionAction(argparse.Action):
    """`parser.add_argument("--version", action=VersionAction)`: print the version line, exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 help: str = "print the version and exit") -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(version_line(parser.prog))  # on stdout, like --help
        parser.exit(0)
