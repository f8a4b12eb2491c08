"""How an Accounting-Request changes a session (RFC 2866): pure rules, shared by every backend.

Idempotent: an Accounting-Request sent again (a retransmission the duplicate cache did not catch, e.g. from a new
source port or with a new Acct-Delay-Time) changes nothing. A session is (client, Acct-Session-Id); a NAS that reuses
an Acct-Session-Id after the session stopped gets a new row from its next Start. An Interim-Update or Stop whose event
time is before a session's start is about an earlier session (a late packet or a replay): it is stale for that session
and never touches it. Each rule takes the session's latest row (None: none yet) and the event, and returns a `Plan`:
what to write and what to report.
"""

from __future__ import annotations

from .rows import SessionEvent, SessionRow, SessionWrite

__all__ = ["Plan", "grown", "merge", "new_session", "on_start", "on_stop", "on_update", "started"]


class Plan:
    """What one request writes (nothing, a new row, or the latest row changed) and reports."""

    __slots__ = ("insert", "result", "update")  # a plain class: the PAM login imports this module

    def __init__(self, result: SessionWrite, *, insert: SessionRow | None = None, update: SessionRow | None = None
                 ) -> None:
        self.result = result
        self.insert = insert  # a new session to insert (its id is the store's to give: 0 here)
        self.update = update  # the latest row as it must become (same id)


def on_start(row: SessionRow | None, event: SessionEvent) -> Plan:
    """A Start. REPEATED when the session is already known (a repeated or late Start); what it adds is merged."""
    if row is not None and (row.stop_time is None or event.event_time <= row.stop_time):
        merged = merge(row, event, stop=False)
        return Plan(SessionWrite.REPEATED, update=None if merged == row else merged)
    return Plan(SessionWrite.RECORDED, insert=new_session(event, start_time=event.event_time, stop=False))


def on_update(row: SessionRow | None, event: SessionEvent) -> Plan:
    """An Interim-Update; opens the session if its Start was lost."""
    if row is None:
        return Plan(SessionWrite.RECORDED, insert=new_session(event, start_time=started(event), stop=False))
    if event.event_time < row.start_time:
        return Plan(SessionWrite.STALE)
    if row.stop_time is not None:
        return Plan(SessionWrite.REPEATED)  # a late update of a finished session
    return _merged(row, event, stop=False)


def on_stop(row: SessionRow | None, event: SessionEvent) -> Plan:
    """A Stop; records the whole session if its Start was lost."""
    if row is None:
        return Plan(SessionWrite.RECORDED, insert=new_session(event, start_time=started(event), stop=True))
    if event.event_time < row.start_time:
        return Plan(SessionWrite.STALE)  # an earlier session's Stop must not close this one
    if row.status == "stopped":
        return Plan(SessionWrite.REPEATED)
    return _merged(row, event, stop=True)  # open, or closed by Accounting-On/Off meanwhile


def _merged(row: SessionRow, event: SessionEvent, *, stop: bool) -> Plan:
    merged = merge(row, event, stop=stop)
    if merged == row:
        return Plan(SessionWrite.REPEATED)
    return Plan(SessionWrite.RECORDED, update=merged)


def new_session(event: SessionEvent, *, start_time: float, stop: bool) -> SessionRow:
    """The first row of a session, from its first request (a Start, or an Interim-Update or Stop whose Start was
    lost)."""
    return SessionRow(
        0, event.client, event.session_id, event.user, event.nas_address, event.nas_identifier, event.framed_ip,
        event.calling_station, start_time, event.event_time, event.event_time if stop else None, event.session_time,
        event.input_octets, event.output_octets, event.terminate_cause if stop else None,
        "stopped" if stop else "active",
    )


def started(event: SessionEvent) -> float:
    """When a session began, from an Interim-Update or Stop whose Start never arrived."""
    return event.event_time - (event.session_time or 0)


def grown(old: int | None, new: int | None) -> int | None:
    if new is None:
        return old
    return new if old is None else max(old, new)


def merge(row: SessionRow, event: SessionEvent, *, stop: bool) -> SessionRow:
    """The session after `event`. Counters only grow and times only move forward, so a replayed or reordered
    request changes nothing; what a Start said (user, NAS) is only filled in, never overwritten."""
    merged = row._replace(
        user=row.user or event.user,
        nas_identifier=row.nas_identifier or event.nas_identifier,
        framed_ip=event.framed_ip or row.framed_ip,
        calling_station=row.calling_station or event.calling_station,
        last_update=max(row.last_update, event.event_time),
        session_time=grown(row.session_time, event.session_time),
        input_octets=grown(row.input_octets, event.input_octets),
        output_octets=grown(row.output_octets, event.output_octets),
    )
    if stop:  # on_stop ignores a Stop older than the start, so the stop never precedes it
        merged = merged._replace(stop_time=event.event_time, status="stopped",
                                  terminate_cause=event.terminate_cause or row.terminate_cause)
    return merged
