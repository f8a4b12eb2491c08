"""The server's log on stderr, with writes that can be held back: the decision lines of a group of replies leave in
one write instead of one each (with a line per decision, those writes were the costliest part of an accept).

Outside `held()` every record is written at once, as with logging's own StreamHandler.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

__all__ = ["held", "install"]

_BUFFER_BYTES = 1 << 16


class _HeldStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.holds = 0

    def flush(self) -> None:
        if not self.holds:
            super().flush()


_handler: _HeldStreamHandler | None = None


def install(level: int, fmt: str) -> None:
    """Log records at `level` and above to stderr through a buffer that is flushed after each record, except
    inside `held()`."""
    global _handler
    # The logging module's documented optimisations: our format shows no source position, thread or process name.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr is not a file (embedded, captured): no buffering
        logging.basicConfig(stream=sys.stderr, level=level, format=fmt)
        return
    stream = open(fd, "w", buffering=_BUFFER_BYTES, encoding=sys.stderr.encoding or "utf-8",  # noqa: SIM115
                  errors="backslashreplace", closefd=False)
    _handler = _HeldStreamHandler(stream)
    _handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.addHandler(_handler)
    root.setLevel(level)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Records logged in this block are written together when it ends."""
    handler = _handler
    if handler is None:
        yield
        return
    handler.acquire()
    handler.holds += 1
    handler.release()
    try:
        yield
    finally:
        handler.acquire()
        try:
            handler.holds -= 1
            handler.flush()
        finally:
            handler.release()
