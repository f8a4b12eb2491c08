"""One worker of otp-radiusd: its UDP sockets, the receive loop, and the threads that decide.

The receiving (main) thread does everything cheap (receive.py) and decides the code checks itself, in one transaction
per pass of the receive loop (group commit, decide.py). Requests that may be slow (a password checked by argon2 or
PAM, a code sent by mail, accounting) go through the admission queue (admission.py) to the evaluating threads
(evaluate.py, up to `radius.login_threads` of them), each with its own verifier (store connection), so that neither
the socket nor the other users wait for one slow check. A reply goes into the duplicate cache before it leaves, so a
retransmission is answered with the same bytes. A background thread copies the store's write-ahead log into the
database (checkpoint.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import time
from collections.abc import Callable, Sequence

from otpcore.config import Config
from otpcore.errors import OtpError
from otpcore.store import writer_turn

from . import logsink
from .accounting import ACCOUNTING_EVALUATE_COUNTERS
from .admission import Admission, IssuedStates
from .checkpoint import Checkpointer
from .clients import ClientTable
from .decide import EVALUATE_COUNTERS, CodeGroup, Decider
from .dedup import ReplyCache
from .droplog import DropLog
from .evaluate import Evaluators
from .jobs import AccessJob, AccountingJob, Counters, Shared
from .receive import ACCOUNTING_RECEIVE_COUNTERS, RECEIVE_COUNTERS, Receiver
from .tls import TLS_COUNTERS, TlsServer
from .tlsreceive import TlsReceiver
from .tlssetup import server_context
from .udp import bind_sockets, format_address
from .verifier import VerifierFactory, VerifierLike, open_verifier

__all__ = ["VerifierFactory", "VerifierLike", "Worker", "bind_sockets", "format_address"]

log = logging.getLogger("otp.radiusd")

MAX_PENDING = 1024  # requests waiting for the evaluating threads; more are dropped (the client retransmits)
MAX_WAIT = 5.0  # seconds a request may wait for an evaluating thread; older ones are dropped (admission.py)
LIFO_AFTER = 1.0  # a backlog older than this: newest requests first, so fresh ones are answered (admission.py)
HOUSEKEEPING_INTERVAL = 1.0
WAITING_INTERVAL = 0.05  # how often, while requests wait for an evaluating thread, the threads are looked at
STOP_DRAIN_SECONDS = 10.0
# The order of the counters in the log line
COUNTERS = (*RECEIVE_COUNTERS, *ACCOUNTING_RECEIVE_COUNTERS, *EVALUATE_COUNTERS, *ACCOUNTING_EVALUATE_COUNTERS)

_Job = AccessJob | AccountingJob


class Worker:
    def __init__(self, config: Config, sockets: Sequence[socket.socket], *, verifier_factory: VerifierFactory,
                 config_loader: Callable[[], Config] | None = None, label: str = "",
                 accounting_sockets: Sequence[socket.socket] = (), tls_sockets: Sequence[socket.socket] = ()) -> None:
        self._config = config
        self._sockets = [*sockets, *accounting_sockets]
        self._factory = verifier_factory
        self._loader = config_loader
        self._label = label  # " worker=N" when there are several
        info = logsink.info_writer(log) if log.isEnabledFor(logging.INFO) else None
        self._shared = Shared(ReplyCache(), IssuedStates(config.policy.challenge_timeout), info, label)
        self._admission: Admission[_Job] = Admission(MAX_PENDING, max_wait=MAX_WAIT, lifo_after=LIFO_AFTER,
                                                     on_stale=self._stale)
        self._stale_counters: Counters = {"overload_stale": 0}  # written under the admission's consumers' lock
        self._decider = Decider(self._shared)
        self._evaluators = Evaluators(config.radius.login_threads, self._admission, self._decider, self._shared,
                                      factory=verifier_factory, config=config)
        self._drops = DropLog(label)
        self._receiver = Receiver(self._shared, ClientTable(config.radius.clients), self._admission,
                                  frozenset(accounting_sockets), self._drops)
        self._tls = self._tls_server(config, tls_sockets)
        self._turn = writer_turn(config.store, shared=config.radius.workers > 1)  # for the receiving thread's groups
        self._checkpointer: Checkpointer | None = None
        self._stopping = False
        self._reload_requested = False
        self._stats_requested = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- control (safe from signal handlers and other threads) --------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True
        self._wake()

    def request_reload(self) -> None:
        self._reload_requested = True
        self._wake()

    def request_stats(self) -> None:
        self._stats_requested = True
        self._wake()

    def counters(self) -> dict[str, int]:
        out = dict.fromkeys(COUNTERS + (TLS_COUNTERS if self._tls is not None else ()), 0)
        group = self._receiver.group
        tls = [self._tls.counters, self._tls.receiver.counters] if self._tls is not None else []
        for counters in [self._receiver.counters, *self._evaluators.counters, self._stale_counters,
                         *([group.counters] if group is not None else []), *tls]:
            for name, value in list(counters.items()):
                out[name] = out.get(name, 0) + value
        out["cached_replies"] = len(self._shared.cache)
        out["in_flight"] = self._shared.cache.in_flight
        return out

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe: the loop is awake anyway
            os.write(self._wake_w, b"\0")

    # -- life cycle ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the verifiers (the first evaluating thread's, the receiving thread's) and start the threads; raises
        what opening the store failed with."""
        self._evaluators.start()
        try:
            verifier, checkpoints = open_verifier(self._factory, self._config)
            self._receiver.group = CodeGroup(self._decider, verifier, self._turn)
            if checkpoints:
                self._checkpointer = Checkpointer(self._config.store.path, label=self._label)
                self._checkpointer.start()
        except BaseException:
            self._admission.close()
            self._evaluators.join(STOP_DRAIN_SECONDS)
            raise
        if self._tls is not None:
            self._tls.start()

    def serve(self) -> None:
        """The receive loop, until stop(). Then the queued requests are answered and the verifiers closed."""
        selector = selectors.DefaultSelector()
        for sock in self._sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, sock)
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        receive, admission = self._receiver.receive, self._admission
        next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL
        try:
            while not self._stopping:
                for key, _ in selector.select(WAITING_INTERVAL if len(admission) else HOUSEKEEPING_INTERVAL):
                    if key.data is None:
                        self._drain_wakeups()
                    else:
                        receive(key.data)
                group = self._receiver.group
                if group is not None and group.pending:
                    group.decide()
                if self._reload_requested or self._stats_requested:
                    self._on_request()
                now = time.monotonic()
                if len(admission):
                    self._evaluators.check(now)  # another thread if those running are held up
                if now >= next_housekeeping:
                    self._shared.cache.expire(now)
                    self._shared.states.expire()
                    self._drops.flush(now)
                    next_housekeeping = now + HOUSEKEEPING_INTERVAL
        finally:
            selector.close()
            self._shut_down()

    def _on_request(self) -> None:
        if self._reload_requested:
            self._reload_requested = False
            self._reload()
        if self._stats_requested:
            self._stats_requested = False
            self._log_counters()

    def _shut_down(self) -> None:
        """After the receive loop: what is queued is answered, then every verifier closed."""
        if self._tls is not None:
            self._tls.pause()  # no new request; the replies to those queued still go out
        if self._receiver.group is not None:
            self._receiver.group.close(self._shared)
        else:
            self._turn.close()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._admission.close()
        if not self._evaluators.join(STOP_DRAIN_SECONDS):
            log.warning("stopping with requests still being evaluated%s", self._label)
        if self._tls is not None:
            self._tls.stop(STOP_DRAIN_SECONDS)
        self._log_counters()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except OSError:
            pass

    def _stale(self, job: _Job) -> None:
        """Admission dropped a request that waited too long (an evaluating thread, under the consumers' lock)."""
        self._shared.cache.abandon(job.key)
        self._stale_counters["overload_stale"] += 1

    # -- receiving thread ---------------------------------------------------------------------------------------------

    def _reload(self) -> None:
        if self._loader is None:
            return
        try:
            config = self._loader()
        except Exception as exc:
            log.error("reload failed, keeping the running configuration: %s%s", exc, self._label)
            return
        old, new = self._config.radius, config.radius
        if (new.listen, new.accounting_listen, new.workers, new.login_threads) != \
                (old.listen, old.accounting_listen, old.workers, old.login_threads) or \
                (new.tls is None) != (old.tls is None) or (new.tls and old.tls and new.tls.listen != old.tls.listen):
            log.warning("radius.listen, radius.accounting_listen, radius.tls_listen, radius.workers and "
                        "radius.login_threads take effect at the next start%s", self._label)
        self._receiver.clients = ClientTable(new.clients)
        if self._tls is not None and new.tls is not None:
            try:
                self._tls.reload(server_context(new.tls), ClientTable(new.clients, tls=True), new.tls.idle_timeout)
            except OtpError as exc:
                log.error("reload: %s; RadSec keeps the running certificates and clients%s", exc, self._label)
        self._config = config
        self._shared.states.ttl = config.policy.challenge_timeout
        self._evaluators.reload(config)  # each evaluating thread reopens its verifier with the new policy
        if self._receiver.group is not None:
            self._receiver.group.reopen(self._factory, config, self._label)
        count = len(self._receiver.clients)
        log.info("reloaded %s: %d %s%s", config.path, count, "client" if count == 1 else "clients", self._label)

    def _tls_server(self, config: Config, sockets: Sequence[socket.socket]) -> TlsServer | None:
        """The TLS thread (not started) for the RadSec sockets; raises ConfigError if the certificates cannot be
        loaded."""
        tls = config.radius.tls
        if tls is None or not sockets:
            return None
        receiver = TlsReceiver(self._shared, ClientTable(()), self._admission, frozenset(), self._drops)
        return TlsServer(list(sockets), server_context(tls), ClientTable(config.radius.clients, tls=True), receiver,
                         tls.idle_timeout, self._label)

    def _log_counters(self) -> None:
        log.info("counters%s: %s", self._label, " ".join(f"{k}={v}" for k, v in self.counters().items()))
