"""The workers of one server take turns at SQLite's write lock through a flock on a file beside the store.

SQLite's own busy handler polls with sleeps of 1, 2, 5, 10 ms and more; a worker waiting on the flock is woken the
moment the other one is done. The flock is held from before BEGIN to after COMMIT of a group. With one worker, nothing
is taken. Other processes (PAM logins, otp-admin) still wait through SQLite's busy handler.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

__all__ = ["FlockTurn"]

log = logging.getLogger("otpcore.store")


class FlockTurn:
    """A WriterTurn (otpcore.store.interface) for the SQLite store at `store_path`."""

    def __init__(self, store_path: Path | str, shared: bool) -> None:
        self._path = f"{store_path}.radiusd-lock"
        self._shared = shared
        self._fd = -1
        self._taken = False

    @property
    def idle(self) -> bool:
        """No other worker to take turns with."""
        return not self._shared

    def try_take(self) -> bool:
        """Take the turn if nobody has it (then the next `with` finds it taken and keeps it); False if somebody does."""
        if not self._shared or self._taken:
            return True
        if not self._open():
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._taken = True
        return True

    def __enter__(self) -> None:
        if not self._shared or self._taken or not self._open():
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._taken = True

    def __exit__(self, *exc: object) -> None:
        if self._taken:
            self._taken = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self) -> bool:
        if self._fd < 0:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:  # SQLite's locking alone is still correct, only slower under load
                log.warning("cannot open %s (%s): workers wait for the store's write lock by polling", self._path,
                            exc.strerror)
                self._shared = False
                return False
        return True
