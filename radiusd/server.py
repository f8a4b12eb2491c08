"""One worker of otp-radiusd: its UDP sockets, the receive loop and the evaluating thread.

The receiving (main) thread does everything cheap and never blocks on the store: client lookup, the duplicate cache,
decoding and authenticating, Status-Server. Requests that need the core go, in order, to one evaluating thread, which
owns the Verifier (its SQLite connection) and may block in argon2 or PAM without stalling the socket. Its reply goes
into the duplicate cache before it leaves, so a retransmission is answered with the same bytes.

Accounting-Requests (RFC 2866) arrive on their own sockets and take the same path: checked in the receiving thread
(accounting.py), recorded in the store by the evaluating thread, answered only once recorded, and through the same
duplicate cache.
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
from dataclasses import dataclass
from typing import Any, Protocol

from otpcore.config import ClientConfig, Config
from otpcore.decision import Decision, Verdict
from otpcore.errors import OtpError
from otpcore.store import Store

from . import accounting, wire
from .admission import CLOSED, Admission, IssuedStates
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

RECEIVE_COUNTERS = (
    "received", "unknown_client", wire.MALFORMED, wire.BAD_AUTHENTICATOR, wire.MISSING_MESSAGE_AUTHENTICATOR,
    wire.UNSUPPORTED_CODE, "duplicate_answered", "duplicate_in_flight", "overload", "status_server", "errors",
)
EVALUATE_COUNTERS = ("accept", "reject", "challenge", "locked", "evaluate_errors", "overload_stale")
# Accounting has counters of its own, prefixed: acct_received, acct_bad_authenticator, acct_recorded, ...
ACCOUNTING_RECEIVE_COUNTERS = tuple(f"acct_{name}" for name in (
    "received", "unknown_client", wire.MALFORMED, wire.BAD_AUTHENTICATOR, wire.MISSING_MESSAGE_AUTHENTICATOR,
    wire.UNSUPPORTED_CODE, "duplicate_answered", "duplicate_in_flight", "overload", "status_server",
))
ACCOUNTING_EVALUATE_COUNTERS = ("acct_recorded", "acct_errors")

_REPLY = {
    Verdict.ACCEPT: wire.ACCESS_ACCEPT,
    Verdict.REJECT: wire.ACCESS_REJECT,
    Verdict.LOCKED: wire.ACCESS_REJECT,
    Verdict.CHALLENGE: wire.ACCESS_CHALLENGE,
}


class VerifierLike(Protocol):
    """What a worker needs of otpcore.service.Verifier."""

    def login(self, user: str, password: bytes, *, first_factor: str, door: str, client: str, now: float
              ) -> Decision: ...

    def answer_challenge(self, state: bytes, user: str, code: bytes, *, door: str, client: str, now: float
                         ) -> Decision: ...

    @property
    def store(self) -> Store: ...

    def close(self) -> None: ...


VerifierFactory = Callable[[Config], VerifierLike]


@dataclass(frozen=True, slots=True)
class _Job:
    sock: socket.socket
    addr: Any
    key: Key
    client: ClientConfig
    request: wire.Request


@dataclass(frozen=True, slots=True)
class _AccountingJob:
    sock: socket.socket
    addr: Any
    key: Key
    client: ClientConfig
    request: accounting.AccountingRequest


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
        self._log_decisions = log.isEnabledFor(logging.INFO)

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
                data, addr = recvfrom(wire.MAX_PACKET + 1)
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
            counters[wire.MALFORMED] += 1
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
            request = wire.decode_request(data, client.secret,
                                          require_message_authenticator=client.require_message_authenticator)
        except wire.Drop as drop:
            counters[drop.reason] += 1
            return
        if request.code == wire.STATUS_SERVER:
            counters["status_server"] += 1
            _send(sock, wire.encode_reply(wire.ACCESS_ACCEPT, request, client.secret), addr)
            return
        urgent = request.state is not None and self._states.valid(request.state)
        self._cache.begin(key)
        admitted, shed = self._admission.offer(_Job(sock, addr, key, client, request), urgent=urgent)
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
        log.info("reloaded %s: %d clients%s", config.path, len(self._clients), self._label)

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
            request = accounting.decode_accounting(data, client.secret)
        except wire.Drop as drop:
            counters[f"acct_{drop.reason}"] += 1
            return
        if request.code == accounting.STATUS_SERVER:
            counters["acct_status_server"] += 1
            _send(sock, accounting.encode_accounting_response(request, client.secret), addr)
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
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        get = self._admission.get
        answer = self._answer
        try:
            while True:
                job = get()
                if job is CLOSED:
                    break
                if isinstance(job, _AccountingJob):
                    self._account(verifier, job)
                elif isinstance(job, _Job):
                    try:
                        answer(verifier, job)
                    except Exception:  # a bug must cost one answer, not the thread
                        self._cache.abandon(job.key)
                        self._evaluated["evaluate_errors"] += 1
                        log.exception("unexpected error answering a request%s", self._label)
                else:
                    verifier = self._reopen(verifier, job)
        finally:
            verifier.close()

    def _stale(self, job: Any) -> None:
        """Admission dropped a request that waited too long (evaluating thread)."""
        if isinstance(job, _Job | _AccountingJob):
            self._cache.abandon(job.key)
            self._evaluated["overload_stale"] += 1

    def _reopen(self, verifier: VerifierLike, config: Config) -> VerifierLike:
        try:
            new = self._factory(config)
        except Exception as exc:
            log.error("reload: cannot open the store, keeping the running one: %s%s", exc, self._label)
            return verifier
        verifier.close()
        return new

    def _answer(self, verifier: VerifierLike, job: _Job) -> None:
        request = job.request
        client = job.client
        try:
            if request.password is None:
                decision = None  # CHAP, EAP, ARAP or no password at all: no one-time password can be in there
            elif request.state is not None:
                self._states.discard(request.state)  # single use
                decision = verifier.answer_challenge(request.state, request.user, request.password, door=DOOR,
                                                     client=client.name, now=time.time())
            else:
                # OpenVPN's static challenge sends SCRV1:<base64 password>:<base64 code>: password + code.
                decision = verifier.login(request.user, join_scrv1(request.password),
                                          first_factor=client.first_factor,
                                          door=DOOR, client=client.name, now=time.time())
        except Exception as exc:
            # No answer: the client retries or fails over to another server, and a retransmission is evaluated anew.
            self._cache.abandon(job.key)
            self._evaluated["evaluate_errors"] += 1
            detail = f" ({exc})" if isinstance(exc, OtpError) else ""  # OtpError messages are safe to log
            log.error("decision user=%s client=%s from=%s result=error reason=%s%s%s", _printable(request.user),
                      client.name, format_address(job.addr), type(exc).__name__, self._label, detail)
            return
        if decision is None:
            code, result, reason, message, state = (wire.ACCESS_REJECT, "reject", "unsupported_auth",
                                                    LOCAL_REJECT_MESSAGE, None)
        else:
            code = _REPLY[decision.verdict]
            result, reason, message = decision.verdict.value, str(decision.reason), decision.message
            state = decision.state if code == wire.ACCESS_CHALLENGE else None
            if code == wire.ACCESS_CHALLENGE and not state:
                code, result, message = wire.ACCESS_REJECT, "reject", LOCAL_REJECT_MESSAGE
        reply = wire.encode_reply(code, request, client.secret, message=message, state=state)
        if state:
            self._states.add(state)
        self._cache.finish(job.key, reply, time.monotonic())
        self._evaluated[result] = self._evaluated.get(result, 0) + 1
        if self._log_decisions:  # before the reply leaves: whoever sees the reply can find the line
            log.info("decision user=%s client=%s from=%s result=%s reason=%s%s", _printable(request.user),
                     client.name, format_address(job.addr), result, reason, self._label)
        _send(job.sock, reply, job.addr)

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
                      _printable(request.user or "-"), job.client.name, format_address(job.addr),
                      type(exc).__name__, self._label, detail)
            return
        reply = accounting.encode_accounting_response(request, job.client.secret)
        self._cache.finish(job.key, reply, time.monotonic())
        self._evaluated["acct_recorded"] += 1
        if self._log_decisions:
            log.info("accounting user=%s client=%s from=%s session=%s %s%s", _printable(request.user or "-"),
                     job.client.name, format_address(job.addr), _printable(request.session_id or "-"), outcome,
                     self._label)
        _send(job.sock, reply, job.addr)


def _send(sock: socket.socket, data: bytes, addr: Any) -> None:
    with contextlib.suppress(OSError):  # a full send buffer or an unreachable client: the client retransmits
        sock.sendto(data, addr)


def _printable(text: str) -> str:
    """A user name as it may appear in one log line: no control characters, no spaces."""
    if text.isprintable() and " " not in text:
        return text
    return "".join(c if c.isprintable() and c != " " else f"\\x{ord(c):02x}" for c in text)


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
