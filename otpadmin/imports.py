"""`otp-admin import`: users and tokens from another system's files (otpcore.importers), all or nothing."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from otpcore.admin import Admin
from otpcore.config import Config
from otpcore.errors import InputError
from otpcore.importers import FORMATS, parse_records

__all__ = ["register"]


def register(sub: Any) -> None:
    s = sub.add_parser("import", help="import users and tokens from another system (all or nothing)")
    s.add_argument("--format", required=True, choices=list(FORMATS))
    s.add_argument("--user", help="owner of a google-authenticator file; with other formats, import only this user")
    s.add_argument("--issuer", help="issuer recorded on the imported tokens")
    s.add_argument("--replace", action="store_true",
                   help="a token whose secret the user already holds updates that token, which keeps its counter "
                        "(default: the import is refused)")
    s.add_argument("file", help="file to import, or - for stdin")
    s.set_defaults(handler=import_file)


def import_file(args: argparse.Namespace, config: Config) -> int:
    try:
        content = Path(args.file).read_text() if args.file != "-" else sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}") from None
    records = parse_records(args.format, content, user=args.user, issuer=args.issuer)
    with Admin(config) as admin:
        result = admin.import_users(records, now=time.time(), replace=args.replace)
    replaced = f": {result.replaced} replaced, their counters kept" if result.replaced else ""
    print(f"imported {len(records)} token(s) for {len({u.name for u, _ in records})} user(s){replaced}")
    return 0
