"""QR codes of otpauth:// URIs (segno): for the terminal, as PNG or as SVG."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from .errors import InputError

__all__ = ["render_terminal", "reserve", "save"]

SUFFIXES = (".png", ".svg")


def render_terminal(uri: str) -> str:
    import segno

    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def reserve(path: Path) -> Path:
    """Check that `path` can be written before anything is committed: returns a new empty temporary file beside it
    (mode 0600, same suffix) for `save`. The caller removes it if it does not save."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"--qr: unsupported file type {suffix or '(none)'}: use .png or .svg")
    if path.is_dir():
        raise InputError(f"--qr: {path} is a directory")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise InputError(f"--qr: cannot write {path}: {exc.strerror}") from None
    os.close(fd)
    return Path(name)


def save(uri: str, path: Path, reserved: Path | None = None) -> None:
    """Write the QR code of `uri` to `path` (PNG or SVG, by its suffix), mode 0600: it holds the token's secret."""
    import segno

    temp = reserved if reserved is not None else reserve(path)
    try:
        segno.make(uri, error="m").save(str(temp), kind=path.suffix.lower()[1:], scale=6, border=2)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise InputError(f"--qr: cannot write {path}: {exc.strerror}") from None
