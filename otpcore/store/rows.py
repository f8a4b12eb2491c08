"""What the store holds and answers, whatever the engine: one type per row, and the outcomes of accounting writes.

NamedTuples, not dataclasses: a PAM login imports them all, and a NamedTuple class costs a tenth of a frozen dataclass
to make (about 0.05 against 0.5 ms)."""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["SCHEMA_VERSION", "AuditRow", "ChallengeRow", "InviteRow", "NasClosed", "PortalSessionRow", "ReplyGroupRow",
           "SessionEvent", "SessionRow", "SessionWrite", "TokenRow", "UserRow"]

# The version of the schema these rows are read from: every backend migrates its database up to it.
SCHEMA_VERSION = 10


class UserRow(NamedTuple):
    id: int
    name: str
    email: str | None
    phone: str | None
    password_hash: str | None
    failures: int
    last_bad: bytes | None
    locked_at: float | None
    created: float
    lockouts: int  # lockouts in a row since the last success or unlock (policy: each lasts twice the one before)
    oob_sends: str | None  # JSON list of the times email/sms codes were sent to the user in the last day
    directory: bool  # a user of the directory ([ldap], schema 7): its e-mail address and phone number are read there
    reply_group: str | None = None  # the reply group whose attributes an Accept carries (schema 8)
    reply: str | None = None  # JSON: the user's own reply attributes (otpcore.replies), after the group's


class ReplyGroupRow(NamedTuple):
    """A group of users and the reply attributes an Accept of theirs carries (schema 8)."""

    name: str
    attributes: str  # JSON: a list of [name, value] (otpcore.replies)
    created: float
    updated: float


class TokenRow(NamedTuple):
    id: int
    user_id: int
    type: str
    algorithm: str
    digits: int
    period: int
    t0: int
    counter: int  # HOTP: the next counter expected
    last_step: int  # TOTP: the last accepted time step (-1: none yet)
    drift: int  # TOTP: steps between the token's clock and ours at the last accept
    window: int | None  # per-token override of totp_window / hotp_lookahead (e.g. from google-authenticator)
    secret: bytes | None  # sealed
    issuer: str | None
    active: bool
    created: float
    options: str | None  # JSON: per-token knobs of out-of-band tokens
    seal: int  # how the secret is bound to the row: 1 = token id only (before schema 4), 2 = id, owner, parameters

    @classmethod
    def unsaved(cls, kind: str) -> TokenRow:
        """A 6-digit SHA1 token of this kind that is in no store (yet): a candidate's parameters, a fresh state."""
        return cls(0, 0, kind, "SHA1", 6, 30, 0, 0, -1, 0, None, None, None, True, 0.0, None, 2)


class ChallengeRow(NamedTuple):
    state: bytes
    user_id: int
    client: str
    token_id: int | None
    created: float
    expires: float
    code_hash: bytes | None
    attempts: int
    state_expires: float | None = None  # when the State stops being accepted (None: at `expires`)


class AuditRow(NamedTuple):
    id: int
    time: float
    user: str | None
    door: str
    client: str | None
    result: str
    reason: str
    source: str | None = None  # where the request came from: the RADIUS peer's address, the PAM rhost (schema 5)


class SessionEvent(NamedTuple):
    """What one Accounting-Request says about a session (RFC 2866), as the store records it."""

    client: str  # the configured RADIUS client's name
    session_id: str  # Acct-Session-Id
    event_time: float  # when it happened at the NAS: Event-Timestamp, else arrival minus Acct-Delay-Time
    user: str | None = None
    nas_address: str | None = None  # NAS-IP-Address / NAS-IPv6-Address, else the packet's source address
    nas_identifier: str | None = None
    framed_ip: str | None = None
    calling_station: str | None = None
    session_time: int | None = None  # Acct-Session-Time
    input_octets: int | None = None  # Gigawords included
    output_octets: int | None = None
    terminate_cause: str | None = None


class SessionWrite(enum.StrEnum):
    """What an Accounting-Request did to the sessions table."""

    RECORDED = "recorded"
    REPEATED = "already recorded"  # nothing new: a resent or late request
    STALE = "stale"  # older than the session's start: about an earlier session, ignored


class NasClosed(NamedTuple):
    """Accounting-On/Off: sessions closed, and open sessions left alone because they started after it."""

    closed: int
    stale: int


class SessionRow(NamedTuple):
    id: int
    client: str
    session_id: str
    user: str | None
    nas_address: str | None
    nas_identifier: str | None
    framed_ip: str | None
    calling_station: str | None
    start_time: float
    last_update: float
    stop_time: float | None
    session_time: int | None
    input_octets: int | None
    output_octets: int | None
    terminate_cause: str | None
    status: str  # active | stopped (Stop received) | closed (Accounting-On/Off of its NAS)


class PortalSessionRow(NamedTuple):
    """A session of the self-service portal (otp-web, schema 8)."""

    key: bytes  # keyed fingerprint of the session cookie (the cookie itself is never stored)
    user: str | None
    stage: str  # how far the login went: code (first factor passed), enrol (no token yet), in (logged in)
    created: float
    expires: float
    data: str | None  # JSON: the pending challenge, the contact being confirmed, the time of the last re-login
    sealed: bytes | None  # the secret of a token being enrolled, sealed to this session (active once proved)


class InviteRow(NamedTuple):
    """A one-time enrolment code of `otp-admin user invite` (schema 8), by user name."""

    user: str
    code_hash: bytes  # keyed fingerprint of the code
    created: float
    expires: float
