"""What the core logs while a command runs (a code that could not be sent, and why): kept here, not printed as the
core wrote it, so that a failed command still says one line. A command may take them into its own message; after a
command that succeeded, those left are printed as `otp-admin: warning: ...`, escaped (they may name a user or an
address)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from otpbase.escape import escape

__all__ = ["collected", "take"]


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(escape(record.getMessage()))


_collector: _Collector | None = None


@contextmanager
def collected() -> Iterator[list[str]]:
    """Around one command: the core's warnings are collected; yields the list of those no command took (filled in
    at the end)."""
    global _collector
    _collector = _Collector()
    root = logging.getLogger()
    root.addHandler(_collector)
    left: list[str] = []
    try:
        yield left
    finally:
        root.removeHandler(_collector)
        left.extend(take())
        _collector = None


def take() -> list[str]:
    """The warnings logged so far (and not printed at the end any more)."""
    if _collector is None:
        return []
    messages, _collector.messages = _collector.messages, []
    return messages
