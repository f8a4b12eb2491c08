"""`otp-admin audit` and `otp-admin sessions`: what happened (the audit trail) and who is connected (RADIUS
accounting)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from otpcore.admin import Admin
from otpcore.config import Config

from .output import emit, format_since, iso

__all__ = ["register"]


def register(sub: Any) -> None:
    s = sub.add_parser("audit", help="show the audit trail")
    s.add_argument("--user")
    s.add_argument("--since", help="ISO date/time, unix time, or an age such as 30m, 12h, 7d")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=audit)

    s = sub.add_parser("sessions", help="list the sessions reported by RADIUS accounting")
    s.add_argument("--active", action="store_true", help="only sessions still open")
    s.add_argument("--user")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=sessions)


def audit(args: argparse.Namespace, config: Config) -> int:
    since = format_since(args.since, time.time()) if args.since else None
    with Admin(config) as admin:
        rows = admin.store.audit_rows(user=args.user, since=since)
    out = [{"time": iso(r.time), "user": r.user, "door": r.door, "client": r.client, "source": r.source,
            "result": r.result, "reason": r.reason} for r in rows]
    emit(args, out, ["time", "user", "door", "client", "source", "result", "reason"])
    return 0


def sessions(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        rows = admin.store.sessions(active_only=args.active, user=args.user)
    out = [{"id": r.id, "user": r.user, "client": r.client, "nas": r.nas_identifier or r.nas_address,
            "nas_address": r.nas_address, "nas_identifier": r.nas_identifier, "session_id": r.session_id,
            "framed_ip": r.framed_ip, "calling_station": r.calling_station, "start": iso(r.start_time),
            "last_update": iso(r.last_update), "stop": iso(r.stop_time), "session_time": r.session_time,
            "input_octets": r.input_octets, "output_octets": r.output_octets, "terminate_cause": r.terminate_cause,
            "status": r.status} for r in rows]
    emit(args, out, ["user", "client", "nas", "session_id", "framed_ip", "start", "stop", "input_octets",
                     "output_octets", "terminate_cause", "status"])
    return 0
