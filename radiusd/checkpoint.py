"""The store's write-ahead log is copied into the database by a background thread of each worker, not by the commit
that happens to make it reach 1000 pages (SQLite's default): that copy, with its two fsyncs, would stall the requests
of that commit, and under group commit the other worker waiting for its turn too (it was what the p99 latency at
half load was made of).

Only a store with checkpoints (otpcore.store.Checkpointing: SQLite) has them. The thread has a connection of its own
and runs a PASSIVE checkpoint every `interval` seconds: it waits for no reader or writer and blocks none, and SQLite
releases the GIL while it works, so the receive loop keeps running. The connections that answer requests are set to
never checkpoint (`set_wal_autocheckpoint(0)`); other processes (PAM logins, otp-admin) keep SQLite's default. The
thread runs at a lower priority (nice +10; on Linux a thread has a nice value of its own): a checkpoint copies a few
megabytes at once, and on a machine with as many busy workers as cores it would otherwise take a core from one of them
for that long (the tail of the latency at half load).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Protocol

from otpcore.config import StoreConfig
from otpcore.store import Checkpointing, Store, open_store

__all__ = ["Checkpointer", "no_autocheckpoint"]

log = logging.getLogger("otp.radiusd")

INTERVAL = 0.25  # seconds between two checkpoints
NICENESS = 10  # added to the checkpoint thread's nice value


class Checkpointer:
    def __init__(self, path: Path, interval: float = INTERVAL, label: str = "") -> None:
        self._path = Path(path)
        self._interval = interval
        self._label = label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        if sys.platform.startswith("linux"):  # where a thread has a nice value of its own
            with contextlib.suppress(OSError):  # best effort: a checkpoint at full priority still works
                me = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, me, os.getpriority(os.PRIO_PROCESS, me) + NICENESS)
        store: Store | None = None
        failing = False
        while not self._stop.wait(self._interval):
            try:
                if store is None:
                    store = open_store(StoreConfig(path=self._path))
                if isinstance(store, Checkpointing):  # else nothing to do (no_autocheckpoint() said otherwise)
                    store.checkpoint()
                failing = False
            except Exception as exc:  # the store is being replaced, the disk is full...: try again next time
                if not failing:
                    log.warning("checkpoint of %s failed: %s%s", self._path, exc, self._label)
                failing = True
                if store is not None:
                    _close(store)
                    store = None
        if store is not None:
            _close(store)


def _close(store: Store) -> None:
    with contextlib.suppress(Exception):  # a connection on a dead file system may fail to close
        store.close()


class _WithStore(Protocol):
    @property
    def store(self) -> Store: ...


def no_autocheckpoint(verifier: _WithStore) -> bool:
    """The verifier's connection leaves checkpoints to the Checkpointer; False if its store has none."""
    try:
        store = verifier.store
        if not isinstance(store, Checkpointing):
            return False
        store.set_wal_autocheckpoint(0)
    except Exception as exc:  # only an optimisation: the connection checkpoints by itself then
        log.warning("cannot leave checkpoints to the background: %s", exc)
        return False
    return True
