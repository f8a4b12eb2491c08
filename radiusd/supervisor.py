"""With `workers = N`: the supervisor forks one worker per socket set, forwards signals to them, and restarts a worker
that dies (unless it dies at start-up: then the whole server stops, as a broken configuration would stop one)."""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable

from otpcore.config import Config
from otpcore.errors import OtpError

__all__ = ["Supervisor"]

log = logging.getLogger("otp.radiusd")

FAST_FAILURE_SECONDS = 5.0  # a worker dying this soon after its start stops the whole server
STOP_TIMEOUT_SECONDS = 15.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD)

# sockets, label, accounting sockets, RadSec sockets
RunWorker = Callable[[list[socket.socket], str, list[socket.socket], list[socket.socket]], int]


class Supervisor:
    def __init__(self, kinds: list[list[list[socket.socket]]], loader: Callable[[], Config],
                 run_worker: RunWorker) -> None:
        """`kinds`: the sockets (RADIUS, accounting, RadSec), each a list of one list per worker."""
        self._sockets, self._acct_sockets, self._tls_sockets = kinds
        self._kinds = kinds
        self._loader = loader
        self._run_worker = run_worker
        self._flags: set[int] = set()
        self._children: dict[int, tuple[int, float]] = {}  # pid -> (worker index, start time)
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._deadline = 0.0
        self._exit_code = 0

    def run(self) -> int:
        """Until every worker has stopped; returns the exit status."""
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        for signum in _SIGNALS:
            signal.signal(signum, lambda signum, _frame: self._flags.add(signum))
        signal.set_wakeup_fd(self._wake_w)
        for index in range(len(self._sockets)):
            self._spawn(index)
        log.info("supervisor: %d workers started", len(self._sockets))
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        while self._children:
            selector.select(1.0)
            self._drain_wakeups()
            self._handle_signals()
            self._reap()
            if self._stopping and self._children and time.monotonic() > self._deadline:
                log.error("workers did not stop in time: killing them")
                self._signal_all(signal.SIGKILL)
        signal.set_wakeup_fd(-1)
        for sock in (s for sets in self._kinds for socks in sets for s in socks):
            sock.close()
        log.info("stopped")
        return self._exit_code

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:
            self._worker(index)  # never returns
        self._children[pid] = (index, time.monotonic())

    def _worker(self, index: int) -> None:
        """In the forked child: keep only this worker's sockets, run it, and exit with its status."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(self._wake_r)
            os.close(self._wake_w)
            for sets in self._kinds:
                for i, socks in enumerate(sets):
                    if i != index:
                        for sock in socks:
                            sock.close()
            code = self._run_worker(self._sockets[index], f" worker={index + 1}", self._acct_sockets[index],
                                    self._tls_sockets[index])
        except BaseException:
            log.exception("worker %d failed", index + 1)
        finally:
            logging.shutdown()
            sys.stderr.flush()
            os._exit(code)

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 512):
                pass

    def _handle_signals(self) -> None:
        pending = set(self._flags)
        self._flags.difference_update(pending)
        if pending & {signal.SIGTERM, signal.SIGINT} and not self._stopping:
            self._stop()
        if signal.SIGHUP in pending and not self._stopping:
            try:
                self._loader()  # checked once here, so a bad file gives one error line, not one per worker
            except OtpError as exc:
                log.error("reload failed, keeping the running configuration: %s", exc)
            else:
                self._signal_all(signal.SIGHUP)
        if signal.SIGUSR1 in pending:
            self._signal_all(signal.SIGUSR1)

    def _reap(self) -> None:
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self._children.clear()
                return
            if pid == 0:
                return
            index, started = self._children.pop(pid, (-1, 0.0))
            if self._stopping or index < 0:
                continue
            code = os.waitstatus_to_exitcode(status)
            if time.monotonic() - started < FAST_FAILURE_SECONDS:
                log.error("worker %d exited at start-up (status %d): stopping", index + 1, code)
                self._exit_code = 1
                self._stop()
            else:
                log.error("worker %d exited (status %d): restarting it", index + 1, code)
                self._spawn(index)

    def _stop(self) -> None:
        self._stopping = True
        self._deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for pid in list(self._children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
