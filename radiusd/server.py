"""One worker of otp-radiusd: its UDP sockets, the receive loop and the evaluating thread.

The receiving (main) thread does everything cheap: client lookup, the duplicate cache, decoding and authenticating,
Status-Server, and the code checks (first_factor "none": the code alone, store reads and writes and HMACs only).
Requests that may be slow go, in order, to one evaluating thread, which owns its own Verifier (SQLite connection) and
may block in argon2, PAM or a mail delivery without stalling the socket. A reply goes into the duplicate cache before
it leaves, so a retransmission is answered with the same bytes.

Group commit: the code checks read in one pass of the receive loop are decided in one transaction, and so are the
requests the evaluating thread finds waiting together that are code checks; the replies leave after the COMMIT, never
before, and the decision lines are logged (in one write) before the replies leave. Deciding code checks in the
receiving thread saves the hand-over to the other thread (two thread switches and GIL hand-offs per request, a third
of the cost of an accept); the price is that this thread waits while the store's write lock is taken by someone else
(another worker, a PAM login, `otp-admin`). With several workers, they take turns at the write lock (the store's
`writer_turn`: for SQLite a flock, instead of its sleeping busy handler); a worker that finds the turn taken checks its
group's codes meanwhile (`Verifier.precheck`), so that its own turn is shorter. A group is decided at one time, taken
when it is formed: its decisions, lockouts and audit rows carry that time even if the turn came a little later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from otpbase.escape import escape
from otpbase.radius import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    BAD_AUTHENTICATOR,
    MALFORMED,
    MAX_PACKET,
    MISSING_MESSAGE_AUTHENTICATOR,
    STATUS_SERVER,
    UNSUPPORTED_CODE,
    Drop,
)
from otpbase.radius.access import Request, decode_request
from otpbase.radius.accounting import AccountingRequest, decode_accounting
from otpbase.radius.replies import encode_accounting_response, encode_reply
from otpcore.config import ClientConfig, Config
from otpcore.decision import Decision, Verdict
from otpcore.errors import OtpError, StoreError
from otpcore.store import Store, WriterTurn, writer_turn

from . import accounting, logsink
from .admission import CLOSED, EMPTY, Admission, IssuedStates
from .checkpoint import Checkpointer, no_autocheckpoint
from .clients import ClientTable
from .dedup import Key, ReplyCache
from .scrv1 import join_scrv1

__all__ = ["RECEIVE_COUNTERS", "VerifierFactory", "VerifierLike", "Worker", "bind_sockets", "format_address"]

log = logging.getLogger("otp.radiusd")

DOOR = "radius"
LOCAL_REJECT_MESSAGE = "Authentication failed"
MAX_PENDING = 1024  # requests waiting for the evaluating thread; more are dropped (the client retransmits)
MAX_WAIT = 5.0  # seconds a request may wait for the evaluating thread; older ones are dropped (admission.py)
LIFO_AFTER = 1.0  # a backlog older than this: newest requests first, so fresh ones are answered (admission.py)
RECEIVE_BATCH = 64  # datagrams read from one socket before looking at the others
HOUSEKEEPING_INTERVAL = 1.0
STOP_DRAIN_SECONDS = 10.0
GROUP_MAX = 256  # requests decided in one transaction at most (group commit)
# Groups at least this big check their codes ahead while the other worker has the turn. A smaller group's turn is short
# anyway, and checking ahead costs it a query of its own: at half load that was more CPU and a longer latency tail.
PRECHECK_MIN = 8

RECEIVE_COUNTERS = (
    "received", "unknown_client", MALFORMED, BAD_AUTHENTICATOR, MISSING_MESSAGE_AUTHENTICATOR, UNSUPPORTED_CODE,
    "duplicate_answered", "duplicate_in_flight", "overload", "status_server", "errors",
)
# store_unavailable: requests left unanswered because the store could not be used (also in evaluate_errors)
EVALUATE_COUNTERS = ("accept", "reject", "challenge", "locked", "evaluate_errors", "store_unavailable",
                     "overload_stale")
# Accounting has counters of its own, prefixed: acct_received, acct_bad_authenticator, acct_recorded, ...
ACCOUNTING_RECEIVE_COUNTERS = tuple(f"acct_{name}" for name in (
    "received", "unknown_client", MALFORMED, BAD_AUTHENTICATOR, MISSING_MESSAGE_AUTHENTICATOR, UNSUPPORTED_CODE,
    "duplicate_answered", "duplicate_in_flight", "overload", "status_server",
))
ACCOUNTING_EVALUATE_COUNTERS = ("acct_recorded", "acct_errors")

_Outcome = tuple[int, str, str, str, bytes | None]  # reply code, result, reason, Reply-Message, State

_REPLY = {  # verdict -> (reply code, result in the log and counters)
    Verdict.ACCEPT: (ACCESS_ACCEPT, "accept"),
    Verdict.REJECT: (ACCESS_REJECT, "reject"),
    Verdict.LOCKED: (ACCESS_REJECT, "locked"),
    Verdict.CHALLENGE: (ACCESS_CHALLENGE, "challenge"),
}


class VerifierLike(Protocol):
    """What a worker needs of otpcore.service.Verifier."""

    def login(self, user: str, password: bytes, *, first_factor: str, door: str, client: str, now: float,
              source: str | None = None) -> Decision: ...

    def answer_challenge(self, state: bytes, user: str, code: bytes, *, door: str, client: str, now: float,
                         source: str | None = None) -> Decision: ...

    @property
    def store(self) -> Store: ...

    def close(self) -> None: ...


VerifierFactory = Callable[[Config], VerifierLike]


class _Job(NamedTuple):
    sock: socket.socket
    addr: Any
    key: Key
    client: ClientConfig
    request: Request


class _AccountingJob(NamedTuple):
    sock: socket.socket
    addr: Any
    key: Key
    client: ClientConfig
    request: AccountingRequest


class Worker:
    def __init__(self, config: Config, sockets: Sequence[socket.socket], *, verifier_factory: VerifierFactory,
                 config_loader: Callable[[], Config] | None = None, label: str = "",
                 accounting_sockets: Sequence[socket.socket] = ()) -> None:
        self._config = config
        self._sockets = [*sockets, *accounting_sockets]
        self._accounting_sockets = frozenset(accounting_sockets)
        self._factory = verifier_factory
        self._loader = config_loader
        self._label = label  # " worker=N" when there are several
        self._clients = ClientTable(config.radius.clients)
        self._cache = ReplyCache()
        self._admission = Admission(MAX_PENDING, max_wait=MAX_WAIT, lifo_after=LIFO_AFTER, on_stale=self._stale)
        self._states = IssuedStates(config.policy.challenge_timeout)  # valid States go first under overload
        # written by the receiving thread only
        self._counters = dict.fromkeys(RECEIVE_COUNTERS + ACCOUNTING_RECEIVE_COUNTERS, 0)
        # written by the evaluating thread only
        self._evaluated = dict.fromkeys(EVALUATE_COUNTERS + ACCOUNTING_EVALUATE_COUNTERS, 0)
        self._stopping = False
        self._reload_requested = False
        self._stats_requested = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._evaluate_loop, name="evaluate", daemon=True)
        # one line per decision, written without a LogRecord each (None: INFO is off)
        self._info = logsink.info_writer(log) if log.isEnabledFor(logging.INFO) else None
        self._turn = writer_turn(config.store, shared=config.radius.workers > 1)
        # Code checks are decided by the receiving thread itself, with a verifier of its own (see the docstring).
        self._fast: list[_Job] = []
        self._fast_verifier: VerifierLike | None = None
        self._fast_turn = writer_turn(config.store, shared=config.radius.workers > 1)
        self._decided_here = dict.fromkeys(EVALUATE_COUNTERS, 0)  # written by the receiving thread only
        self._checkpointer: Checkpointer | None = None

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
        out = dict(self._counters)
        out.update(self._evaluated)
        for name, value in self._decided_here.items():
            out[name] = out.get(name, 0) + value
        out["cached_replies"] = len(self._cache)
        out["in_flight"] = self._cache.in_flight
        return out

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe: the loop is awake anyway
            os.write(self._wake_w, b"\0")

    # -- life cycle ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the evaluating thread and wait until it has opened the store; re-raise what it failed with."""
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error
        try:
            self._fast_verifier = self._factory(self._config)
            if no_autocheckpoint(self._fast_verifier):
                self._checkpointer = Checkpointer(self._config.store.path, label=self._label)
                self._checkpointer.start()
        except BaseException:
            self._admission.close()
            self._thread.join()
            raise

    def serve(self) -> None:
        """The receive loop, until stop(). Then the queued requests are answered and the verifier closed."""
        selector = selectors.DefaultSelector()
        for sock in self._sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL
        try:
            while not self._stopping:
                for key, _ in selector.select(HOUSEKEEPING_INTERVAL):
                    if key.fileobj == self._wake_r:
                        self._drain_wakeups()
                    else:
                        self._receive(key.fileobj)  # type: ignore[arg-type]
                if self._fast:
                    jobs, self._fast = self._fast, []
                    self._guarded(self._answer_group, self._fast_verifier, jobs, self._fast_turn, self._decided_here)
                if self._reload_requested:
                    self._reload_requested = False
                    self._reload()
                if self._stats_requested:
                    self._stats_requested = False
                    self._log_counters()
                now = time.monotonic()
                if now >= next_housekeeping:
                    self._cache.expire(now)
                    self._states.expire()
                    next_housekeeping = now + HOUSEKEEPING_INTERVAL
        finally:
            selector.close()
            for job in self._fast:  # left by an exception: forgotten, so a retransmission is evaluated
                self._cache.abandon(job.key)
            if self._fast_verifier is not None:
                self._fast_verifier.close()
            self._fast_turn.close()
            if self._checkpointer is not None:
                self._checkpointer.stop()
            self._admission.close()
            self._thread.join(STOP_DRAIN_SECONDS)
            if self._thread.is_alive():
                log.warning("stopping with requests still being evaluated%s", self._label)
            self._log_counters()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except OSError:
            pass

    # -- receiving thread ---------------------------------------------------------------------------------------------

    def _receive(self, sock: socket.socket) -> None:
        recvfrom = sock.recvfrom
        handle = self._handle_accounting if sock in self._accounting_sockets else self._handle
        for _ in range(RECEIVE_BATCH):
            try:
                data, addr = recvfrom(MAX_PACKET + 1)
            except OSError:  # BlockingIOError: drained; anything else (ICMP errors...) is not a packet either
                return
            try:
                handle(sock, data, addr)
            except Exception:  # nothing a client sends may stop the loop
                self._counters["errors"] += 1
                log.exception("unexpected error handling a packet%s", self._label)

    def _handle(self, sock: socket.socket, data: bytes, addr: Any) -> None:
        counters = self._counters
        counters["received"] += 1
        client = self._clients.lookup(addr[0])
        if client is None:
            counters["unknown_client"] += 1
            return
        if len(data) < 20:
            counters[MALFORMED] += 1
            return
        key = (addr[0], addr[1], data[1], data[4:20])
        cached = self._cache.lookup(key, time.monotonic())
        if cached is not None:
            if cached:
                counters["duplicate_answered"] += 1
                _send(sock, cached, addr)
            else:
                counters["duplicate_in_flight"] += 1  # RFC 5080 §2.2.2: the first one is still being evaluated
            return
        try:
            request = decode_request(data, client.secret,
                                     require_message_authenticator=client.require_message_authenticator)
        except Drop as drop:
            counters[drop.reason] += 1
            return
        if request.code == STATUS_SERVER:
            counters["status_server"] += 1
            _send(sock, encode_reply(ACCESS_ACCEPT, request, client.secret), addr)
            return
        job = _Job(sock, addr, key, client, request)
        self._cache.begin(key)
        if self._fast_verifier is not None and _batchable(self._fast_verifier, job):
            self._fast.append(job)  # decided at the end of this pass of the receive loop, with the others read
            return
        urgent = request.state is not None and self._states.valid(request.state)
        admitted, shed = self._admission.offer(job, urgent=urgent)
        if not admitted:
            self._cache.abandon(key)
            counters["overload"] += 1
        elif shed is not None:  # the queue was full: the oldest ordinary request made room
            self._cache.abandon(shed.key)  # as if never received: a retransmission is evaluated
            counters["overload"] += 1

    def _reload(self) -> None:
        if self._loader is None:
            return
        try:
            config = self._loader()
        except Exception as exc:
            log.error("reload failed, keeping the running configuration: %s%s", exc, self._label)
            return
        old = self._config.radius
        if (config.radius.listen, config.radius.accounting_listen, config.radius.workers) != \
                (old.listen, old.accounting_listen, old.workers):
            log.warning("radius.listen, radius.accounting_listen and radius.workers take effect at the next start%s",
                        self._label)
        self._clients = ClientTable(config.radius.clients)
        self._config = config
        self._states.ttl = config.policy.challenge_timeout
        self._admission.put_control(config)  # the evaluating thread reopens the verifier with the new policy
        if self._fast_verifier is not None:
            self._fast_verifier = self._reopen(self._fast_verifier, config)
        count = len(self._clients)
        log.info("reloaded %s: %d %s%s", config.path, count, "client" if count == 1 else "clients", self._label)

    def _log_counters(self) -> None:
        log.info("counters%s: %s", self._label, " ".join(f"{k}={v}" for k, v in self.counters().items()))

    def _handle_accounting(self, sock: socket.socket, data: bytes, addr: Any) -> None:
        """An Accounting-Request (or Status-Server) on an accounting socket: checked here, recorded by the
        evaluating thread."""
        counters = self._counters
        counters["acct_received"] += 1
        client = self._clients.lookup(addr[0])
        if client is None:
            counters["acct_unknown_client"] += 1
            return
        if len(data) < 20:
            counters["acct_malformed"] += 1
            return
        key = (addr[0], addr[1], data[1], data[4:20])
        cached = self._cache.lookup(key, time.monotonic())
        if cached is not None:
            if cached:
                counters["acct_duplicate_answered"] += 1
                _send(sock, cached, addr)
            else:
                counters["acct_duplicate_in_flight"] += 1
            return
        try:
            request = decode_accounting(data, client.secret)
        except Drop as drop:
            counters[f"acct_{drop.reason}"] += 1
            return
        if request.code == STATUS_SERVER:
            counters["acct_status_server"] += 1
            _send(sock, encode_accounting_response(request, client.secret), addr)
            return
        self._cache.begin(key)
        admitted, shed = self._admission.offer(_AccountingJob(sock, addr, key, client, request))
        if not admitted:
            self._cache.abandon(key)
            counters["acct_overload"] += 1
        elif shed is not None:  # the queue was full: the oldest ordinary request made room (admission.py)
            self._cache.abandon(shed.key)  # else its retransmissions would be dropped as in flight, for ever
            counters["acct_overload"] += 1

    # -- evaluating thread --------------------------------------------------------------------------------------------

    def _evaluate_loop(self) -> None:
        try:
            verifier = self._factory(self._config)
            no_autocheckpoint(verifier)
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        get = self._admission.get
        try:
            while True:
                job = get()
                if isinstance(job, _Job) and _batchable(verifier, job):
                    # The code checks waiting next to it share its transaction; the queue keeps the others (its
                    # order: urgent first), except the one that ends the run, which is answered right after.
                    group = [job]
                    job = EMPTY
                    while len(group) < GROUP_MAX:
                        job = get(block=False)
                        if not (isinstance(job, _Job) and _batchable(verifier, job)):
                            break
                        group.append(job)
                        job = EMPTY
                    self._guarded(self._answer_group, verifier, group, self._turn, self._evaluated)
                    if job is EMPTY:
                        continue
                if job is CLOSED:
                    break
                if isinstance(job, _AccountingJob):
                    self._account(verifier, job)
                elif isinstance(job, _Job):
                    self._guarded(self._answer, verifier, job, self._turn, self._evaluated)
                else:
                    verifier = self._reopen(verifier, job)
        finally:
            verifier.close()
            self._turn.close()

    def _stale(self, job: Any) -> None:
        """Admission dropped a request that waited too long (evaluating thread)."""
        if isinstance(job, _Job | _AccountingJob):
            self._cache.abandon(job.key)
            self._evaluated["overload_stale"] += 1

    def _reopen(self, verifier: VerifierLike, config: Config) -> VerifierLike:
        try:
            new = self._factory(config)
            no_autocheckpoint(new)
        except Exception as exc:
            log.error("reload: cannot open the store, keeping the running one: %s%s", exc, self._label)
            return verifier
        verifier.close()
        return new

    def _guarded(self, answer: Callable[..., None], verifier: Any, jobs: Any, turn: WriterTurn,
                 counters: dict[str, int]) -> None:
        try:
            answer(verifier, jobs, turn, counters)
        except Exception:  # a bug must cost answers, not the thread
            for job in jobs if isinstance(jobs, list) else [jobs]:
                self._cache.abandon(job.key)  # no-op for one already answered
                counters["evaluate_errors"] += 1
            log.exception("unexpected error answering a request%s", self._label)

    def _answer(self, verifier: VerifierLike, job: _Job, turn: WriterTurn | None = None,
                counters: dict[str, int] | None = None) -> None:
        """One request, in a transaction of its own (by default as the evaluating thread: its counters)."""
        if counters is None:
            counters = self._evaluated
        try:
            outcome = self._decide(verifier, job)
        except Exception as exc:
            # No answer: the client retries or fails over to another server, and a retransmission is evaluated anew.
            self._failed(job, exc, counters)
            return
        reply = self._prepare(job, outcome, counters)
        if reply is not None:
            _send(job.sock, reply, job.addr)

    def _answer_group(self, verifier: VerifierLike, jobs: list[_Job], turn: WriterTurn,
                      counters: dict[str, int]) -> None:
        """Group commit: the decisions on `jobs` in one transaction, their replies sent after its COMMIT."""
        if len(jobs) == 1 and turn.idle:
            self._answer(verifier, jobs[0], turn, counters)
            return
        now = time.time()  # one time for the group: the prechecks are kept by it
        precheck = getattr(verifier, "precheck", None)
        if precheck is not None and len(jobs) >= PRECHECK_MIN and not turn.try_take():
            # Another worker has the turn: check the codes (unseal, HMACs) while it finishes, so that less is left
            # to do once ours comes.
            precheck([(job.request.user, join_scrv1(job.request.password or b""), job.client.first_factor)
                      for job in jobs], now=now)
        try:
            with turn, verifier.batch([job.request.user for job in jobs]):  # type: ignore[attr-defined]
                outcomes = [self._decide(verifier, job, now) for job in jobs]
        except Exception:
            # Rolled back as a whole, so none of it happened: one by one, each in a transaction of its own.
            for job in jobs:
                self._answer(verifier, job, turn, counters)
            return
        with logsink.held():  # the decision lines leave in one write, before the replies
            replies = [self._prepare(job, outcome, counters) for job, outcome in zip(jobs, outcomes, strict=True)]
        for job, reply in zip(jobs, replies, strict=True):
            if reply is not None:
                _send(job.sock, reply, job.addr)

    def _decide(self, verifier: VerifierLike, job: _Job, now: float | None = None) -> _Outcome:
        """The verdict on one request: (reply code, result, reason, Reply-Message, State). Raises on a fault."""
        if now is None:
            now = time.time()
        request = job.request
        client = job.client
        if request.password is None:
            # CHAP, EAP, ARAP or no password at all: no one-time password can be in there
            return ACCESS_REJECT, "reject", "unsupported_auth", LOCAL_REJECT_MESSAGE, None
        if request.state is not None:
            self._states.discard(request.state)  # single use
            decision = verifier.answer_challenge(request.state, request.user, request.password, door=DOOR,
                                                 client=client.name, now=now, source=job.addr[0])
        else:
            # OpenVPN's static challenge sends SCRV1:<base64 password>:<base64 code>: password + code.
            decision = verifier.login(request.user, join_scrv1(request.password), first_factor=client.first_factor,
                                      door=DOOR, client=client.name, now=now, source=job.addr[0])
        code, result = _REPLY[decision.verdict]
        reason, message = decision.reason, decision.message
        state = decision.state if code == ACCESS_CHALLENGE else None
        if code == ACCESS_CHALLENGE and not state:
            code, result, message = ACCESS_REJECT, "reject", LOCAL_REJECT_MESSAGE
        return code, result, reason, message, state

    def _failed(self, job: _Job, exc: Exception, counters: dict[str, int]) -> None:
        request = job.request
        self._cache.abandon(job.key)
        counters["evaluate_errors"] += 1
        if isinstance(exc, StoreError):
            counters["store_unavailable"] += 1
        detail = f" ({exc})" if isinstance(exc, OtpError) else ""  # OtpError messages are safe to log
        log.error("decision user=%s client=%s from=%s result=error reason=%s%s%s", escape(request.user, space=True),
                  job.client.name, format_address(job.addr), type(exc).__name__, self._label, detail)

    def _prepare(self, job: _Job, outcome: _Outcome, counters: dict[str, int]) -> bytes | None:
        """The reply to send (None: none, the request is forgotten): encoded, cached, and its decision logged."""
        code, result, reason, message, state = outcome
        request = job.request
        try:
            reply = encode_reply(code, request, job.client.secret, message=message, state=state)
        except Exception:  # a bug must cost one answer, not the thread
            self._cache.abandon(job.key)
            counters["evaluate_errors"] += 1
            log.exception("unexpected error answering a request%s", self._label)
            return None
        if state:
            self._states.add(state)
        self._cache.finish(job.key, reply, time.monotonic())
        counters[result] = counters.get(result, 0) + 1
        if self._info is not None:  # before the reply leaves: whoever sees the reply can find the line
            self._info(f"decision user={escape(request.user, space=True)} client={job.client.name} "
                       f"from={format_address(job.addr)} result={result} reason={reason}{self._label}")
        return reply

    def _account(self, verifier: VerifierLike, job: _AccountingJob) -> None:
        """Record, then answer: a request that could not be recorded gets no answer (RFC 2866 §2), so the NAS
        sends it again."""
        request = job.request
        try:
            outcome = accounting.record(verifier.store, request, client=job.client.name, source=job.addr[0],
                                        now=time.time())
        except Exception as exc:
            self._cache.abandon(job.key)
            self._evaluated["acct_errors"] += 1
            detail = f" ({exc})" if isinstance(exc, OtpError) else ""
            log.error("accounting user=%s client=%s from=%s result=error reason=%s%s%s",
                      escape(request.user or "-", space=True), job.client.name, format_address(job.addr),
                      type(exc).__name__, self._label, detail)
            return
        reply = encode_accounting_response(request, job.client.secret)
        self._cache.finish(job.key, reply, time.monotonic())
        self._evaluated["acct_recorded"] += 1
        if self._info is not None:
            user, session = escape(request.user or "-", space=True), escape(request.session_id or "-", space=True)
            self._info(f"accounting user={user} client={job.client.name} from={format_address(job.addr)} "
                       f"session={session} {outcome}{self._label}")
        _send(job.sock, reply, job.addr)


def _batchable(verifier: VerifierLike, job: _Job) -> bool:
    """Judged on the password login() will get (an `SCRV1::` turns into an empty one, which may send a code)."""
    check = getattr(verifier, "batchable", None)
    password = job.request.password
    return check is not None and bool(check(None if password is None else join_scrv1(password),
                                            job.client.first_factor, job.request.state))


def _send(sock: socket.socket, data: bytes, addr: Any) -> None:
    with contextlib.suppress(OSError):  # a full send buffer or an unreachable client: the client retransmits
        sock.sendto(data, addr)


def format_address(addr: Any) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_sockets(listen: Sequence[tuple[str, int]], copies: int) -> list[list[socket.socket]]:
    """`copies` sets of UDP sockets on the listen addresses; several copies share each port with SO_REUSEPORT.

    IPv6 sockets are IPv6-only, so `0.0.0.0:1812` and `[::]:1812` can both be listed. Raises OSError with the
    address in the message.
    """
    sets: list[list[socket.socket]] = []
    try:
        for _ in range(copies):
            socks: list[socket.socket] = []
            sets.append(socks)
            for host, port in listen:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_DGRAM)
                socks.append(sock)
                if copies > 1:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                with contextlib.suppress(OSError):  # room for a burst (the kernel caps it at net.core.rmem_max)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                try:
                    sock.bind((host, port))
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot listen on {format_address((host, port))}: {exc.strerror}"
                                  ) from None
    except BaseException:
        for socks in sets:
            for sock in socks:
                sock.close()
        raise
    return sets
