"""`otp-admin pam-config`: the /etc/pam.d line that loads this installation's PAM module (pam_module.pamconfig)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from otpcore.config import config_path
from otpcore.errors import InputError

__all__ = ["register"]


def register(sub: Any) -> None:
    s = sub.add_parser("pam-config", help="print the /etc/pam.d auth line for this installation's PAM module")
    s.add_argument("--mode", required=True, choices=["local", "radius"])
    s.add_argument("--server", action="extend", nargs="+", metavar="HOST:PORT",
                   help="otp-radiusd servers, tried in order (radius mode; several after one --server, or repeated)")
    s.add_argument("--secret-file", help="file holding the RADIUS shared secret (radius mode)")
    s.set_defaults(handler=pam_config, needs_config=False)


def pam_config(args: argparse.Namespace, config: None) -> int:
    from pam_module.pamconfig import auth_line, compatibility_warnings

    if args.mode == "radius" and not args.server:
        raise InputError("--mode radius needs at least one --server HOST:PORT")
    if args.mode == "radius" and not args.secret_file:
        raise InputError("--mode radius needs --secret-file PATH (the RADIUS shared secret, mode 0600)")
    local_config = str(config_path(args.config).absolute()) if args.mode == "local" else None
    try:
        line = auth_line(args.mode, servers=args.server or [], secret_file=args.secret_file, config=local_config)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    for warning in compatibility_warnings():
        print(f"otp-admin: warning: {warning}", file=sys.stderr)
    print(line)
    return 0
