"""`otp-admin init`: the store and the sealing key of this configuration."""

from __future__ import annotations

import argparse
from typing import Any

from otpcore.admin import Admin
from otpcore.config import Config

__all__ = ["register"]


def register(sub: Any) -> None:
    s = sub.add_parser("init", help="create the store and the sealing key (idempotent)")
    s.set_defaults(handler=init)


def init(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        created = admin.init()
    for what in created:
        print(f"created {what}")
    if not created:
        print("store and key already present; schema up to date")
    return 0
