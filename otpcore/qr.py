"""QR codes of otpauth:// URIs (segno): for the terminal, as PNG or as SVG."""

from __future__ import annotations

import io
from pathlib import Path

from .errors import InputError

__all__ = ["render_terminal", "save"]


def render_terminal(uri: str) -> str:
    import segno

    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def save(uri: str, path: Path) -> None:
    import segno

    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise InputError(f"--qr: unsupported file type {suffix or '(none)'}: use .png or .svg")
    try:
        segno.make(uri, error="m").save(str(path), scale=6, border=2)
    except OSError as exc:
        raise InputError(f"--qr: cannot write {path}: {exc.strerror}") from None
