"""`otp-admin`: provisioning from the command line.

Exit 0 on success, 1 on a refused operation (unknown user, wrong code, store or key problem), 2 on bad usage;
every failure is one line on stderr and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from otpbase.version import VersionAction
from otpcore.config import load_config
from otpcore.errors import ConfigError, InputError, OtpError

from . import codes, groups, imports, install, invites, notes, pamline, storecopy, tokens, trail, users

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as for every other failure (argparse would print the whole usage first).
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.error("a command is required (see --help)")
    try:
        _check_utf8(args)
        # pam-config needs no otp.toml (a radius-mode host has none): only the path of the config is printed.
        config = load_config(args.config) if args.needs_config else None
        with notes.collected() as warnings:
            status = int(args.handler(args, config) or 0)
        for warning in warnings if status == 0 else ():  # a failure says it all in its one line
            print(f"otp-admin: warning: {warning}", file=sys.stderr)
        return status
    except (InputError, ConfigError) as exc:
        print(f"otp-admin: error: {exc}", file=sys.stderr)
        return 2
    except OtpError as exc:
        print(f"otp-admin: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otp-admin audit | head`: the reader left, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="otp-admin", description="Provision users and tokens of the OTP server.")
    p.add_argument("--config", help="TOML config (default: $OTP_CONFIG or /etc/otp/otp.toml)")
    p.add_argument("--version", action=VersionAction)
    p.set_defaults(needs_config=True)
    sub = p.add_subparsers(metavar="COMMAND", parser_class=_Parser)
    install.register(sub)
    user = sub.add_parser("user", help="manage users").add_subparsers(metavar="VERB", parser_class=_Parser)
    users.register(user)
    invites.register(user)
    groups.register(sub.add_parser("group", help="manage groups of users and the reply attributes of their Accepts")
                    .add_subparsers(metavar="VERB", parser_class=_Parser))
    token = sub.add_parser("token", help="manage tokens").add_subparsers(metavar="VERB", parser_class=_Parser)
    tokens.register(token)
    codes.register(token)
    imports.register(sub)
    pamline.register(sub)
    trail.register(sub)
    storecopy.register(sub.add_parser("store", help="the store itself").add_subparsers(metavar="VERB",
                                                                                       parser_class=_Parser))
    return p


# file names may be any bytes; other text may not
_PATH_ARGUMENTS = ("config", "file", "qr", "secret_file", "to", "password_file")


def _check_utf8(args: argparse.Namespace) -> None:
    """Names, codes and addresses go to the store as text: bytes that are not UTF-8 are refused here, once."""
    for key, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if key not in _PATH_ARGUMENTS and isinstance(item, str):
                try:
                    item.encode()
                except UnicodeEncodeError:
                    shown = item.encode(errors="surrogateescape").decode(errors="backslashreplace")
                    raise InputError(f"{key.replace('_', '-')}: not valid UTF-8: '{shown}'") from None


if __name__ == "__main__":
    raise SystemExit(main())
