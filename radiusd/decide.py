"""Deciding Access-Requests: the verdict of the core, the reply encoded and cached, the decision line, the reply sent.

One request is decided in a transaction of its own (the evaluating threads). Code checks (first_factor "none": store
reads and writes and HMACs only) are decided in groups, in one transaction (group commit): the replies leave after
the COMMIT, never before, and the decision lines are logged (in one write) before the replies leave. With several
workers, they take turns at the store's write lock (the store's `writer_turn`: for SQLite a flock, instead of its
sleeping busy handler); a worker that finds the turn taken checks its group's codes meanwhile (`precheck`), so that
its own turn is shorter. A group is decided at one time, taken when it is formed: its decisions, lockouts and audit
rows carry that time even if the turn came a little later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

from otpbase.escape import escape
from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT
from otpbase.radius.replies import encode_reply

# What the Verifier imports when first needed, imported with this module: never at a first request, under the store's
# write lock
from otpcore import emptycode, responsecheck  # noqa: F401
from otpcore.config import Config
from otpcore.decision import Verdict
from otpcore.errors import StoreError
from otpcore.store import WriterTurn

from . import logsink
from .jobs import AccessJob, Counters, Shared, error_detail
from .replyattrs import encoded
from .responses import FIRST_FACTORS, login_response
from .scrv1 import join_scrv1
from .udp import format_address, send
from .verifier import VerifierFactory, VerifierLike, reopen

__all__ = ["EVALUATE_COUNTERS", "PRECHECK_MIN", "CodeGroup", "Decider", "batchable"]

log = logging.getLogger("otp.radiusd")

DOOR = "radius"
LOCAL_REJECT_MESSAGE = "Authentication failed"
# Groups at least this big check their codes ahead while the other worker has the turn. A smaller group's turn is short
# anyway, and checking ahead costs it a query of its own: at half load that was more CPU and a longer latency tail.
PRECHECK_MIN = 8
# store_unavailable: requests left unanswered because the store could not be used (also in evaluate_errors)
EVALUATE_COUNTERS = ("accept", "reject", "challenge", "locked", "evaluate_errors", "store_unavailable",
                     "overload_stale")


class Outcome(NamedTuple):
    """The verdict on one request, as the reply and the decision line need it."""

    code: int  # the reply's packet code
    result: str  # in the log and the counters: accept, reject, locked, challenge
    reason: str
    message: str  # Reply-Message
    state: bytes | None = None  # with a challenge
    extra: bytes = b""  # attributes encoded for the reply (what an Accept grants, MS-CHAP's answer)

_REPLY = {  # verdict -> (reply code, result in the log and counters)
    Verdict.ACCEPT: (ACCESS_ACCEPT, "accept"),
    Verdict.REJECT: (ACCESS_REJECT, "reject"),
    Verdict.LOCKED: (ACCESS_REJECT, "locked"),
    Verdict.CHALLENGE: (ACCESS_CHALLENGE, "challenge"),
}


def batchable(verifier: VerifierLike, job: AccessJob) -> bool:
    """Judged on the password login() will get (an `SCRV1::` turns into an empty one, which may send a code), or on
    the proof login_response() will get."""
    request = job.request
    if request.proof is not None:
        return request.password is None and verifier.batchable(None, job.client.first_factor, None, response=True)
    password = request.password
    return verifier.batchable(None if password is None else join_scrv1(password), job.client.first_factor,
                              request.state)


class Decider:
    """Used by every thread of a worker that decides; the counters passed in are the calling thread's own."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    def answer(self, verifier: VerifierLike, job: AccessJob, counters: Counters) -> None:
        """One request, in a transaction of its own."""
        try:
            self._answer(verifier, job, counters)
        except Exception:  # a bug must cost an answer, not the thread
            self._lost([job], counters)

    def answer_group(self, verifier: VerifierLike, jobs: Sequence[AccessJob], turn: WriterTurn,
                     counters: Counters) -> None:
        """Group commit: the decisions on `jobs` (batchable ones) in one transaction, their replies sent after its
        COMMIT."""
        try:
            self._answer_group(verifier, jobs, turn, counters)
        except Exception:  # a bug must cost answers, not the thread
            self._lost(jobs, counters)

    def _lost(self, jobs: Sequence[AccessJob], counters: Counters) -> None:
        for job in jobs:
            self._shared.cache.abandon(job.key)  # no-op for one already answered
            counters["evaluate_errors"] += 1
        log.exception("unexpected error answering a request%s", self._shared.label)

    def _answer(self, verifier: VerifierLike, job: AccessJob, counters: Counters) -> None:
        try:
            outcome = self._decide(verifier, job, time.time())
        except Exception as exc:
            # No answer: the client retries or fails over to another server, and a retransmission is evaluated anew.
            self._failed(job, exc, counters)
            return
        reply = self._prepare(job, outcome, counters)
        if reply is not None:
            send(job.sock, reply, job.addr)

    def _answer_group(self, verifier: VerifierLike, jobs: Sequence[AccessJob], turn: WriterTurn,
                      counters: Counters) -> None:
        if len(jobs) == 1 and turn.idle:
            self._answer(verifier, jobs[0], counters)
            return
        now = time.time()  # one time for the group: the prechecks are kept by it
        if len(jobs) >= PRECHECK_MIN and not turn.try_take():
            # Another worker has the turn: check the codes (unseal, HMACs) while it finishes, so that less is left
            # to do once ours comes.
            verifier.precheck([(job.request.user, join_scrv1(job.request.password or b""), job.client.first_factor)
                               for job in jobs], now=now)
        try:
            with turn, verifier.batch([job.request.user for job in jobs]):
                outcomes = [self._decide(verifier, job, now) for job in jobs]
        except Exception:
            # Rolled back as a whole, so none of it happened: one by one, each in a transaction of its own.
            for job in jobs:
                self._answer(verifier, job, counters)
            return
        with logsink.held():  # the decision lines leave in one write, before the replies
            replies = [self._prepare(job, outcome, counters) for job, outcome in zip(jobs, outcomes, strict=True)]
        for job, reply in zip(jobs, replies, strict=True):
            if reply is not None:
                send(job.sock, reply, job.addr)

    def _decide(self, verifier: VerifierLike, job: AccessJob, now: float) -> Outcome:
        """The verdict on one request: (reply code, result, reason, Reply-Message, State, attributes). Raises on a
        fault."""
        request = job.request
        client = job.client
        extra = b""
        if request.password is None:
            if request.proof is None or client.first_factor not in FIRST_FACTORS:
                # EAP, ARAP, no password at all, or a proof this client's first factor cannot check
                return Outcome(ACCESS_REJECT, "reject", "unsupported_auth", LOCAL_REJECT_MESSAGE)
            decision, extra = login_response(verifier, job, DOOR, now)  # CHAP, MS-CHAP, MS-CHAPv2
        elif request.state is not None:
            self._shared.states.discard(request.state)  # single use
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
        if decision.reply and code == ACCESS_ACCEPT:  # what the Accept grants (radiusd.replyattrs)
            granted = encoded(decision.reply)
            if granted is None:  # logged: an Accept without the attributes could grant more than they say
                return Outcome(ACCESS_REJECT, "reject", "bad_reply_attributes", LOCAL_REJECT_MESSAGE)
            extra += granted
        return Outcome(code, result, reason, message, state, extra)

    def _failed(self, job: AccessJob, exc: Exception, counters: Counters) -> None:
        request = job.request
        self._shared.cache.abandon(job.key)
        counters["evaluate_errors"] += 1
        if isinstance(exc, StoreError):
            counters["store_unavailable"] += 1
        log.error("decision user=%s client=%s from=%s result=error reason=%s%s%s", escape(request.user, space=True),
                  job.client.name, format_address(job.addr), type(exc).__name__, self._shared.label,
                  error_detail(exc))

    def _prepare(self, job: AccessJob, outcome: Outcome, counters: Counters) -> bytes | None:
        """The reply to send (None: none, the request is forgotten): encoded, cached, and its decision logged."""
        code, result, reason, message, state, extra = outcome
        request = job.request
        shared = self._shared
        try:
            reply = encode_reply(code, request, job.client.secret, message=message, state=state, extra=extra)
        except Exception:  # a bug must cost one answer, not the thread
            shared.cache.abandon(job.key)
            counters["evaluate_errors"] += 1
            log.exception("unexpected error answering a request%s", shared.label)
            return None
        if state:
            shared.states.add(state)
        shared.cache.finish(job.key, reply, time.monotonic())
        counters[result] = counters.get(result, 0) + 1
        if shared.info is not None:  # before the reply leaves: whoever sees the reply can find the line
            shared.info(f"decision user={escape(request.user, space=True)} client={job.client.name} "
                        f"from={format_address(job.addr)} result={result} reason={reason}{shared.label}")
        return reply


class CodeGroup:
    """The code checks the receiving thread decides itself, with a verifier of its own: those read in one pass of the
    receive loop are decided together at its end. Deciding them there saves the hand-over to another thread (two
    thread switches and GIL hand-offs per request, a third of the cost of an accept); the price is that the receiving
    thread waits while the store's write lock is taken by someone else (another worker, a PAM login, `otp-admin`)."""

    def __init__(self, decider: Decider, verifier: VerifierLike, turn: WriterTurn) -> None:
        self.verifier = verifier
        self.pending: list[AccessJob] = []
        self.counters: Counters = dict.fromkeys(EVALUATE_COUNTERS, 0)
        self._decider = decider
        self._turn = turn

    def takes(self, job: AccessJob) -> bool:
        return batchable(self.verifier, job)

    def decide(self) -> None:
        """Decide the pending code checks in one transaction and send their replies."""
        jobs, self.pending = self.pending, []
        self._decider.answer_group(self.verifier, jobs, self._turn, self.counters)

    def reopen(self, factory: VerifierFactory, config: Config, label: str) -> None:
        self.verifier = reopen(self.verifier, factory, config, label)

    def close(self, shared: Shared) -> None:
        for job in self.pending:  # left by an exception: forgotten, so a retransmission is evaluated
            shared.cache.abandon(job.key)
        self.pending = []
        self.verifier.close()
        self._turn.close()
