"""The evaluating threads of a worker (up to `radius.login_threads`): the requests that may be slow.

Password logins (argon2, PAM: a first factor may take long, or hang on a system that does not answer), answers to
challenges, requests that send a code by e-mail or SMS, and Accounting-Requests. Each thread takes the next request
from the worker's admission queue (its rules, admission.py: bounded, States first, stale ones dropped, newest first
under a backlog) and answers it with a verifier of its own (its own store connection). Code checks never come here:
the receiving thread decides them in groups (decide.py).

One thread runs from the start. When requests wait and every running thread is held up, another one is started (up
to the limit), and it stays: so a check that waits for something slow (a PAM module, a directory, a mail server)
holds up the request it is for, not the other users'. A thread is held up when it has been on its current request for
more than STALLED_AFTER seconds while using less than WAITING_SHARE of a core for it. A thread that is computing
(argon2 takes some 25 ms of CPU, longer when the cores are busy) is not: more threads would not answer sooner on the
same cores, and each thread that has run argon2 keeps its 19 MiB (the allocator keeps an arena per thread).

A reload gives each thread a new verifier before its next request (the running one if the store cannot be opened).
"""

from __future__ import annotations

import logging
import math
import threading
import time

from otpcore.config import Config

from . import accounting
from .accounting import ACCOUNTING_EVALUATE_COUNTERS
from .admission import CLOSED, Admission
from .decide import EVALUATE_COUNTERS, Decider
from .jobs import AccessJob, AccountingJob, Counters, Shared
from .verifier import VerifierFactory, VerifierLike, open_verifier, reopen

__all__ = ["STALLED_AFTER", "Evaluators"]

log = logging.getLogger("otp.radiusd")

STALLED_AFTER = 0.2  # seconds on one request after which a thread that is not computing counts as held up
WAITING_SHARE = 0.1  # of a core: a thread using less than this on its current request waits for something
RETRY_AFTER = 5.0  # seconds before another thread is tried after one could not open the store
_ENDED = -math.inf


class _Slot:
    """One thread's state, written by that thread: `since` is when it took its current request, None while it waits
    for one (or opens its verifier), _ENDED once it has ended; `cpu`, the CPU time it had used by then, on its CPU
    clock `clock`."""

    __slots__ = ("clock", "cpu", "since")

    def __init__(self) -> None:
        self.since: float | None = None
        self.cpu = 0.0
        self.clock: int | None = None

    def held_up(self, now: float) -> bool:
        since, clock = self.since, self.clock  # `since` first: the thread writes `cpu` before it
        if since is None or clock is None or now - since <= STALLED_AFTER:
            return False
        try:
            return time.clock_gettime(clock) - self.cpu < (now - since) * WAITING_SHARE
        except OSError:  # the thread has just ended: it takes no more requests either
            return True


class Evaluators:
    def __init__(self, limit: int, admission: Admission[AccessJob | AccountingJob], decider: Decider, shared: Shared,
                 *, factory: VerifierFactory, config: Config) -> None:
        self._limit = limit
        self._admission = admission
        self._decider = decider
        self._shared = shared
        self._factory = factory
        self._config = config
        self._generation = 0  # of the configuration; a thread whose verifier is older reopens it
        self._not_before = 0.0  # no thread is started before this time (monotonic): the last one could not open
        # Grown by the receiving thread only.
        self._threads: list[threading.Thread] = []
        self._slots: list[_Slot] = []
        self.counters: list[Counters] = []  # one dict per thread, written by that thread only

    def start(self) -> None:
        """The first thread, its verifier opened here: raises what opening the store failed with."""
        verifier, _ = open_verifier(self._factory, self._config)
        self._start_thread(verifier)

    def check(self, now: float) -> None:
        """From the receiving thread while requests wait: another thread if every running one is held up."""
        running = [slot for slot in self._slots if slot.since != _ENDED]
        if len(running) < self._limit and now >= self._not_before and len(self._admission) and \
                all(slot.held_up(now) for slot in running):
            self._start_thread(None)

    def reload(self, config: Config) -> None:
        """From the receiving thread: each thread reopens its verifier with `config` before its next request."""
        self._config = config
        self._generation += 1

    def join(self, timeout: float) -> bool:
        """Wait for the threads to end (the admission queue is closed), `timeout` seconds in all; whether they did."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _start_thread(self, verifier: VerifierLike | None) -> None:
        slot = _Slot()
        counters = dict.fromkeys(EVALUATE_COUNTERS + ACCOUNTING_EVALUATE_COUNTERS, 0)
        thread = threading.Thread(target=self._run, args=(verifier, slot, counters), daemon=True,
                                  name=f"evaluate-{len(self._threads) + 1}")
        self._slots.append(slot)
        self.counters.append(counters)
        self._threads.append(thread)
        thread.start()

    def _run(self, verifier: VerifierLike | None, slot: _Slot, counters: Counters) -> None:
        generation = self._generation
        slot.clock = time.pthread_getcpuclockid(threading.get_ident())
        try:
            if verifier is None:
                try:
                    verifier, _ = open_verifier(self._factory, self._config)
                except Exception as exc:  # the running threads go on; a later hold-up tries again
                    log.error("cannot open the store for another evaluating thread: %s%s", exc, self._shared.label)
                    self._not_before = time.monotonic() + RETRY_AFTER
                    return
            self._serve(verifier, generation, slot, counters)
        finally:
            slot.since = _ENDED

    def _serve(self, verifier: VerifierLike, generation: int, slot: _Slot, counters: Counters) -> None:
        get = self._admission.get
        try:
            while True:
                slot.since = None
                job = get()
                slot.cpu = time.thread_time()
                slot.since = time.monotonic()
                if job is CLOSED:
                    break
                if generation != self._generation:
                    generation = self._generation
                    verifier = reopen(verifier, self._factory, self._config, self._shared.label)
                if isinstance(job, AccessJob):
                    self._decider.answer(verifier, job, counters)
                elif isinstance(job, AccountingJob):
                    accounting.answer(self._shared, verifier, job, counters)
        finally:
            verifier.close()
