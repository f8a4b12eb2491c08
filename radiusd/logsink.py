"""The server's log on stderr, with writes that can be held back: the decision lines of a group of replies leave in
one write instead of one each (with a line per decision, those writes were the costliest part of an accept).

Outside `held()` every record is written at once, as with logging's own StreamHandler. `info_writer()` writes the
decision lines in the same format without making a LogRecord for each (a third of the cost of logging one).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

__all__ = ["held", "info_writer", "install"]

_BUFFER_BYTES = 1 << 16
# Under systemd (JOURNAL_STREAM is set) the journal adds the time and the pid itself.
_FORMAT = "%(asctime)s otp-radiusd[%(process)d] %(levelname)s %(message)s"
_JOURNAL_FORMAT = "%(levelname)s %(message)s"
# _FORMAT between the time stamp and the message, for _LineWriter (a test checks the lines match logging's)
_FORMAT_TAIL = _FORMAT.removeprefix("%(asctime)s").removesuffix("%(message)s")


class _HeldStreamHandler(logging.StreamHandler[TextIO]):
    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.holds = 0

    def flush(self) -> None:
        if not self.holds:
            super().flush()


_handler: _HeldStreamHandler | None = None
_journal = False


def install(level: int, *, journal: bool) -> None:
    """Log records at `level` and above to stderr through a buffer that is flushed after each record, except
    inside `held()`."""
    global _handler, _journal
    # The logging module's documented optimisations: our format shows no source position, thread or process name.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    fmt = _JOURNAL_FORMAT if journal else _FORMAT
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr is not a file (embedded, captured): no buffering
        logging.basicConfig(stream=sys.stderr, level=level, format=fmt)
        return
    stream = open(fd, "w", buffering=_BUFFER_BYTES, encoding=sys.stderr.encoding or "utf-8",  # noqa: SIM115
                  errors="backslashreplace", closefd=False)
    _handler = _HeldStreamHandler(stream)
    _handler.setFormatter(logging.Formatter(fmt))
    _journal = journal
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


def info_writer(logger: logging.Logger) -> Callable[[str], None]:
    """A function logging `message` at INFO on `logger`: the line install()'s handler would write, written directly
    when that handler is the only place the record could go; else logger.info itself."""
    handler = _handler
    if handler is None or not logger.isEnabledFor(logging.INFO) or not _only_handler(logger, handler):
        return lambda message: logger.info("%s", message)
    return _LineWriter(handler, logger, _journal)


def _only_handler(logger: logging.Logger, handler: logging.Handler) -> bool:
    """Whether an INFO record of `logger` would reach `handler` and nothing else, unfiltered."""
    if handler.filters or handler.level > logging.INFO:
        return False
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or any(h is not handler for h in current.handlers):
            return False
        if not current.propagate:
            return handler in current.handlers
        current = current.parent
    return True


class _LineWriter:
    """`%(asctime)s otp-radiusd[%(process)d] INFO %(message)s` as logging.Formatter writes it (local time, then a
    comma and the milliseconds); the part before the milliseconds is made once a second."""

    __slots__ = ("_handler", "_journal", "_logger", "_second", "_stamp", "_tail")

    def __init__(self, handler: _HeldStreamHandler, logger: logging.Logger, journal: bool) -> None:
        self._handler = handler
        self._logger = logger
        self._journal = journal
        self._second = -1
        self._stamp = ""
        self._tail = ""

    def __call__(self, message: str) -> None:
        handler = self._handler
        handler.acquire()  # around the time stamp too: the threads of a worker share this writer
        try:
            if self._journal:
                line = _JOURNAL_FORMAT % {"levelname": "INFO", "message": message} + "\n"
            else:
                now = time.time()
                second = int(now)
                if second != self._second:
                    self._second = second
                    self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
                    self._tail = _FORMAT_TAIL % {"process": os.getpid(), "levelname": "INFO"}
                line = f"{self._stamp},{int((now - second) * 1000):03d}{self._tail}{message}\n"
            handler.stream.write(line)
            handler.flush()
        except Exception:  # as logging does: reported on stderr (logging.raiseExceptions), the record dropped
            handler.handleError(self._logger.makeRecord(self._logger.name, logging.INFO, "", 0, message, (), None))
        finally:
            handler.release()
