"""RADIUS accounting (RFC 2866): Accounting-Request in, Accounting-Response out, sessions recorded in the store.

`decode_accounting` checks the framing and the Request Authenticator (MD5 over the packet with a zero authenticator
and the shared secret), and a Message-Authenticator when there is one; anything wrong raises `wire.Drop`, so the
packet gets no answer and adds to a counter. `record` writes what the request says into the store (idempotently, so a
request sent again is recorded once) and `encode_accounting_response` builds the signed answer, Message-Authenticator
first as on every reply of this server. An Accounting-Response is only sent once the request is recorded
(RFC 2866 §2: a server that cannot record a request must not answer it).

Status-Server sent to the accounting port is answered with an Accounting-Response (RFC 5997 §4).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from otpcore.store import SessionEvent, SessionWrite, Store

from .dictionary import load_dictionary
from .wire import (
    BAD_AUTHENTICATOR,
    MALFORMED,
    MAX_PACKET,
    MISSING_MESSAGE_AUTHENTICATOR,
    UNSUPPORTED_CODE,
    Drop,
    hmac_md5,
)

__all__ = [
    "ACCOUNTING_OFF",
    "ACCOUNTING_ON",
    "ACCOUNTING_REQUEST",
    "ACCOUNTING_RESPONSE",
    "INTERIM_UPDATE",
    "START",
    "STATUS_SERVER",
    "STOP",
    "AccountingRequest",
    "decode_accounting",
    "encode_accounting_response",
    "record",
    "request_authenticator",
]

# Packet codes (RFC 2866 §3, RFC 5997).
ACCOUNTING_REQUEST = 4
ACCOUNTING_RESPONSE = 5
STATUS_SERVER = 12

# Acct-Status-Type values (RFC 2866 §5.1).
START = 1
STOP = 2
INTERIM_UPDATE = 3
ACCOUNTING_ON = 7
ACCOUNTING_OFF = 8
_STATUS_NAMES = {START: "start", STOP: "stop", INTERIM_UPDATE: "interim-update", ACCOUNTING_ON: "accounting-on",
                 ACCOUNTING_OFF: "accounting-off"}

# Attribute numbers.
USER_NAME = 1
NAS_IP_ADDRESS = 4
FRAMED_IP_ADDRESS = 8
CALLING_STATION_ID = 31
NAS_IDENTIFIER = 32
PROXY_STATE = 33
ACCT_STATUS_TYPE = 40
ACCT_DELAY_TIME = 41
ACCT_INPUT_OCTETS = 42
ACCT_OUTPUT_OCTETS = 43
ACCT_SESSION_ID = 44
ACCT_SESSION_TIME = 46
ACCT_TERMINATE_CAUSE = 49
ACCT_INPUT_GIGAWORDS = 52
ACCT_OUTPUT_GIGAWORDS = 53
EVENT_TIMESTAMP = 55
MESSAGE_AUTHENTICATOR = 80
NAS_IPV6_ADDRESS = 95

_ZERO16 = bytes(16)
_Attributes = dict[int, list[bytes]]


@dataclass(frozen=True, slots=True)
class AccountingRequest:
    """A decoded, authenticated Accounting-Request (or Status-Server: only code, id, authenticator, proxy_state)."""

    code: int
    id: int
    authenticator: bytes
    proxy_state: tuple[bytes, ...] = ()
    status_type: int = 0
    session_id: str | None = None
    user: str | None = None
    nas_address: str | None = None  # NAS-IP-Address, else NAS-IPv6-Address
    nas_identifier: str | None = None
    framed_ip: str | None = None
    calling_station: str | None = None
    delay_time: int = 0
    event_timestamp: int | None = None
    session_time: int | None = None
    input_octets: int | None = None  # Acct-Input-Gigawords included
    output_octets: int | None = None
    terminate_cause: str | None = None  # the dictionary's name (User-Request, ...), else the number

    @property
    def status_name(self) -> str:
        if self.code == STATUS_SERVER:
            return "status-server"
        return _STATUS_NAMES.get(self.status_type, f"status-type-{self.status_type}")

    def event_time(self, now: float) -> float:
        """When it happened at the NAS: Event-Timestamp, else the arrival time minus Acct-Delay-Time."""
        return float(self.event_timestamp) if self.event_timestamp is not None else now - self.delay_time

    def session_event(self, client: str, source: str, now: float) -> SessionEvent:
        """What the store records; `source` (the packet's address) stands in for a NAS that gives no address."""
        return SessionEvent(
            client=client, session_id=self.session_id or "", event_time=self.event_time(now), user=self.user,
            nas_address=self.nas_address or source, nas_identifier=self.nas_identifier, framed_ip=self.framed_ip,
            calling_station=self.calling_station, session_time=self.session_time, input_octets=self.input_octets,
            output_octets=self.output_octets, terminate_cause=self.terminate_cause,
        )


def request_authenticator(data: bytes, secret: bytes) -> bytes:
    """RFC 2866 §3: MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret)."""
    return hashlib.md5(data[:4] + _ZERO16 + data[20:] + secret).digest()


def decode_accounting(data: bytes, secret: bytes) -> AccountingRequest:
    """Check and decode an Accounting-Request (or Status-Server) from a client with this shared secret.

    Raises Drop for anything that must get no answer.
    """
    size = len(data)
    if size < 20:
        raise Drop(MALFORMED)
    length = (data[2] << 8) | data[3]
    if length < 20 or length > size or length > MAX_PACKET:
        raise Drop(MALFORMED)
    data = data[:length]  # octets past the Length field are padding (RFC 2865 §3)
    code = data[0]
    if code != ACCOUNTING_REQUEST and code != STATUS_SERVER:
        raise Drop(UNSUPPORTED_CODE)
    attributes, ma_offset = _parse(data)
    authenticator = data[4:20]

    if code == STATUS_SERVER:
        # The authenticator is random, as in an Access-Request: the Message-Authenticator is the proof (RFC 5997 §3).
        if not ma_offset:
            raise Drop(MISSING_MESSAGE_AUTHENTICATOR)
        if not _message_authenticator_ok(data, ma_offset, secret, authenticator):
            raise Drop(BAD_AUTHENTICATOR)
        return AccountingRequest(code, data[1], authenticator, tuple(attributes.get(PROXY_STATE, ())))

    if not hmac.compare_digest(request_authenticator(data, secret), authenticator):
        raise Drop(BAD_AUTHENTICATOR)
    # In an Accounting-Request the Message-Authenticator is computed with a zero Request Authenticator (which is
    # itself computed afterwards, over the packet that holds the Message-Authenticator).
    if ma_offset and not _message_authenticator_ok(data, ma_offset, secret, _ZERO16):
        raise Drop(BAD_AUTHENTICATOR)

    status_type = _integer(attributes, ACCT_STATUS_TYPE)
    if status_type is None:
        raise Drop(MALFORMED)
    session_id = _string(attributes, ACCT_SESSION_ID)
    if status_type in (START, STOP, INTERIM_UPDATE) and not session_id:
        raise Drop(MALFORMED)  # RFC 2866 §5.5: every session record carries its Acct-Session-Id

    return AccountingRequest(
        code=code,
        id=data[1],
        authenticator=authenticator,
        proxy_state=tuple(attributes.get(PROXY_STATE, ())),
        status_type=status_type,
        session_id=session_id,
        user=_string(attributes, USER_NAME),
        nas_address=_address(attributes, NAS_IP_ADDRESS, 4) or _address(attributes, NAS_IPV6_ADDRESS, 16),
        nas_identifier=_string(attributes, NAS_IDENTIFIER),
        framed_ip=_address(attributes, FRAMED_IP_ADDRESS, 4),
        calling_station=_string(attributes, CALLING_STATION_ID),
        delay_time=_integer(attributes, ACCT_DELAY_TIME) or 0,
        event_timestamp=_integer(attributes, EVENT_TIMESTAMP),
        session_time=_integer(attributes, ACCT_SESSION_TIME),
        input_octets=_octets(attributes, ACCT_INPUT_OCTETS, ACCT_INPUT_GIGAWORDS),
        output_octets=_octets(attributes, ACCT_OUTPUT_OCTETS, ACCT_OUTPUT_GIGAWORDS),
        terminate_cause=_terminate_cause(attributes),
    )


def encode_accounting_response(request: AccountingRequest, secret: bytes) -> bytes:
    """Accounting-Response: Message-Authenticator first, then the request's Proxy-States (unchanged, in order).

    The Response Authenticator is MD5 over the response with the Request Authenticator (RFC 2866 §3). The
    Message-Authenticator is computed with a zero authenticator, as in the Accounting-Request, except in the answer
    to a Status-Server, which uses its Request Authenticator (RFC 5997 §3; what FreeRADIUS and pyrad check).
    """
    proxy = b"".join(bytes((PROXY_STATE, len(value) + 2)) + value for value in request.proxy_state)
    length = 20 + 18 + len(proxy)
    header = bytes((ACCOUNTING_RESPONSE, request.id)) + length.to_bytes(2, "big")
    unsigned = bytes((MESSAGE_AUTHENTICATOR, 18)) + _ZERO16 + proxy
    vector = request.authenticator if request.code == STATUS_SERVER else _ZERO16
    mac = hmac_md5(secret, header + vector + unsigned)
    attributes = bytes((MESSAGE_AUTHENTICATOR, 18)) + mac + proxy
    response_authenticator = hashlib.md5(header + request.authenticator + attributes + secret).digest()
    return header + response_authenticator + attributes


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
        event = request.session_event(client, source, now)
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


# -- attributes -------------------------------------------------------------------------------------------------------


def _parse(data: bytes) -> tuple[_Attributes, int]:
    """Attribute values by number, and the offset of the Message-Authenticator (0: none). Bad framing is dropped
    (RFC 2865 §5)."""
    attributes: _Attributes = {}
    pos = 20
    end = len(data)
    ma_offset = 0
    while pos < end:
        if pos + 2 > end:
            raise Drop(MALFORMED)
        kind, size = data[pos], data[pos + 1]
        if size < 2 or pos + size > end:
            raise Drop(MALFORMED)
        if kind == MESSAGE_AUTHENTICATOR:
            if ma_offset or size != 18:
                raise Drop(MALFORMED)
            ma_offset = pos
        attributes.setdefault(kind, []).append(data[pos + 2:pos + size])
        pos += size
    return attributes, ma_offset


def _message_authenticator_ok(data: bytes, offset: int, secret: bytes, authenticator: bytes) -> bool:
    signed = data[:4] + authenticator + data[20:offset + 2] + _ZERO16 + data[offset + 18:]
    return hmac.compare_digest(hmac_md5(secret, signed), data[offset + 2:offset + 18])


def _first(attributes: _Attributes, number: int) -> bytes | None:
    values = attributes.get(number)
    return values[0] if values else None


def _integer(attributes: _Attributes, number: int) -> int | None:
    """A 32-bit integer; a value of another size is ignored, as an unknown attribute would be (RFC 5080 §2.8)."""
    value = _first(attributes, number)
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else None


def _string(attributes: _Attributes, number: int) -> str | None:
    value = _first(attributes, number)
    return value.decode("utf-8", "replace") if value else None


def _address(attributes: _Attributes, number: int, size: int) -> str | None:
    value = _first(attributes, number)
    if value is None or len(value) != size:
        return None
    return str(ipaddress.IPv4Address(value) if size == 4 else ipaddress.IPv6Address(value))


def _octets(attributes: _Attributes, octets: int, gigawords: int) -> int | None:
    """Acct-*-Octets plus 2**32 times Acct-*-Gigawords (RFC 2869 §5.1)."""
    low = _integer(attributes, octets)
    high = _integer(attributes, gigawords)
    if low is None and high is None:
        return None
    return ((high or 0) << 32) + (low or 0)


def _terminate_cause(attributes: _Attributes) -> str | None:
    value = _first(attributes, ACCT_TERMINATE_CAUSE)
    if value is None or len(value) != 4:
        return None
    names = load_dictionary().attributes["Acct-Terminate-Cause"].values
    return str(names.GetBackward(value)) if value in names.backward else str(int.from_bytes(value, "big"))
