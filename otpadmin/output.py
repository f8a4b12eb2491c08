"""Listings (plain-text tables or JSON) and times for otp-admin.

Every cell is escaped (otpbase.escape): user names, NAS identifiers and session ids come from the network, and a
forged newline or terminal control sequence must neither fake a row nor reach the admin's terminal.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from otpbase.escape import escape
from otpcore.errors import InputError

__all__ = ["emit", "escaped", "format_since", "iso", "print_table"]

_AGE = re.compile(r"(\d+)\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def emit(args: argparse.Namespace, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A listing: JSON with --json (every key, exact text), else a table of `columns`."""
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, columns)


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def format_since(text: str, now: float) -> float:
    """'30m', '12h', '7d' (an age), a unix time, or an ISO date/time (UTC unless it says otherwise)."""
    text = text.strip()
    if m := _AGE.fullmatch(text):
        return now - int(m[1]) * _UNIT[m[2]]
    if re.fullmatch(r"\d{9,}(\.\d+)?", text):
        return float(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--since: not a time: {text!r} (use 2026-01-31, 2026-01-31T08:00, 1700000000 or 12h)"
                         ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def escaped(value: Any) -> str:
    """A stored value as one line of a human-readable output."""
    return escape(str(value))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escaped(value)
