"""RADIUS accounting (RFC 2866) in the server: what an authenticated Accounting-Request says, written to the store
by an evaluating thread, then answered.

The packets themselves (decoding, authenticating, the Accounting-Response) are the codec's
(`otpbase.radius.accounting`, `otpbase.radius.replies`); the receiving thread checks them (receive.py). An
Accounting-Response is only sent once the request is recorded (RFC 2866 §2: a server that cannot record a request
must not answer it).
"""

from __future__ import annotations

import logging
import time

from otpbase.escape import escape
from otpbase.radius.accounting import AccountingRequest
from otpbase.radius.constants import ACCOUNTING_OFF, ACCOUNTING_ON, INTERIM_UPDATE, START, STATUS_SERVER, STOP
from otpbase.radius.replies import encode_accounting_response
from otpcore.store import SessionEvent, SessionWrite, Store

from .jobs import AccountingJob, Counters, Shared, error_detail
from .udp import format_address, send
from .verifier import VerifierLike

__all__ = ["ACCOUNTING_EVALUATE_COUNTERS", "answer", "record", "session_event"]

log = logging.getLogger("otp.radiusd")

ACCOUNTING_EVALUATE_COUNTERS = ("acct_recorded", "acct_errors")


def answer(shared: Shared, verifier: VerifierLike, job: AccountingJob, counters: Counters) -> None:
    """Record, then answer: a request that could not be recorded gets no answer (RFC 2866 §2), so the NAS sends it
    again. `counters`: the calling thread's own."""
    request = job.request
    try:
        outcome = record(verifier.store, request, client=job.client.name, source=job.addr[0], now=time.time())
        reply = encode_accounting_response(request, job.client.secret)
    except Exception as exc:
        shared.cache.abandon(job.key)
        counters["acct_errors"] += 1
        log.error("accounting user=%s client=%s from=%s result=error reason=%s%s%s",
                  escape(request.user or "-", space=True), job.client.name, format_address(job.addr),
                  type(exc).__name__, shared.label, error_detail(exc))
        return
    shared.cache.finish(job.key, reply, time.monotonic())
    counters["acct_recorded"] += 1
    if shared.info is not None:
        user, session = escape(request.user or "-", space=True), escape(request.session_id or "-", space=True)
        shared.info(f"accounting user={user} client={job.client.name} from={format_address(job.addr)} "
                    f"session={session} {outcome}{shared.label}")
    send(job.sock, reply, job.addr)


def session_event(request: AccountingRequest, client: str, source: str, now: float) -> SessionEvent:
    """What the store records; `source` (the packet's address) stands in for a NAS that gives no address."""
    return SessionEvent(
        client=client, session_id=request.session_id or "", event_time=request.event_time(now), user=request.user,
        nas_address=request.nas_address or source, nas_identifier=request.nas_identifier,
        framed_ip=request.framed_ip, calling_station=request.calling_station, session_time=request.session_time,
        input_octets=request.input_octets, output_octets=request.output_octets,
        terminate_cause=request.terminate_cause,
    )


def record(store: Store, request: AccountingRequest, *, client: str, source: str, now: float) -> str:
    """Write what the request says into the store; returns a short account of it for the log.

    Start, Interim-Update and Stop are keyed by (client, Acct-Session-Id) and are idempotent. Accounting-On/Off close
    every open session of that NAS that started at or before it. A request older than the session it would change
    (a replay, or a late packet about an earlier session) is stale: answered, not recorded. Other status types (tunnel
    accounting, Failed) are acknowledged, not recorded.
    Raises OtpError (StoreError) when the store cannot take it: the request must then get no answer.
    """
    name = request.status_name
    if request.code == STATUS_SERVER:
        return name
    if request.status_type in (START, INTERIM_UPDATE, STOP):
        event = session_event(request, client, source, now)
        write = {START: store.session_start, INTERIM_UPDATE: store.session_update, STOP: store.session_stop}
        outcome = write[request.status_type](event)
        if outcome is SessionWrite.STALE:
            return f"{name} ignored as stale: its event time is before the session's start"
        return name if outcome is SessionWrite.RECORDED else f"{name} (already recorded)"
    if request.status_type in (ACCOUNTING_ON, ACCOUNTING_OFF):
        closed, stale = store.close_nas_sessions(client, request.nas_address or source, request.nas_identifier,
                                                 now=request.event_time(now))
        ignored = f"; ignored as stale by {stale} session(s) that started after it" if stale else ""
        return f"{name}: {closed} open session(s) closed{ignored}"
    return f"{name} (not recorded)"
