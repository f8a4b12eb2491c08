"""The server side of RADIUS accounting (RFC 2866): an Accounting-Request (or a Status-Server sent to the accounting
port, RFC 5997 §4) in, an authenticated `AccountingRequest` or a `Drop` out.

An Accounting-Request proves itself by its Request Authenticator (MD5 over the packet with a zero authenticator and
the shared secret), and by a Message-Authenticator when it has one; a Status-Server by its Message-Authenticator,
which it must have. What to do with the request (recording it) is the server's business, not the codec's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .authenticators import ZERO16, authenticator_ok, message_authenticator_ok
from .constants import (
    ACCOUNTING_REQUEST,
    ACCT_DELAY_TIME,
    ACCT_INPUT_GIGAWORDS,
    ACCT_INPUT_OCTETS,
    ACCT_OUTPUT_GIGAWORDS,
    ACCT_OUTPUT_OCTETS,
    ACCT_SESSION_ID,
    ACCT_SESSION_TIME,
    ACCT_STATUS_TYPE,
    ACCT_TERMINATE_CAUSE,
    CALLING_STATION_ID,
    EVENT_TIMESTAMP,
    FRAMED_IP_ADDRESS,
    INTERIM_UPDATE,
    NAS_IDENTIFIER,
    NAS_IP_ADDRESS,
    NAS_IPV6_ADDRESS,
    START,
    STATUS_NAMES,
    STATUS_SERVER,
    STOP,
    TERMINATE_CAUSES,
    USER_NAME,
)
from .framing import (
    BAD_AUTHENTICATOR,
    MALFORMED,
    MISSING_MESSAGE_AUTHENTICATOR,
    UNSUPPORTED_CODE,
    Drop,
    echoed_proxy_states,
    framed,
    scan,
)

__all__ = ["AccountingRequest", "decode_accounting"]

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
    radius11: bool = False  # came over RADIUS/1.1 (RFC 9765): no authenticator to check, none in the reply

    @property
    def status_name(self) -> str:
        if self.code == STATUS_SERVER:
            return "status-server"
        return STATUS_NAMES.get(self.status_type, f"status-type-{self.status_type}")

    def event_time(self, now: float) -> float:
        """When it happened at the NAS: Event-Timestamp, else the arrival time minus Acct-Delay-Time."""
        return float(self.event_timestamp) if self.event_timestamp is not None else now - self.delay_time


def decode_accounting(data: bytes, secret: bytes, *, tls: bool = False, radius11: bool = False) -> AccountingRequest:
    """Check and decode an Accounting-Request (or Status-Server) from a client with this shared secret. `tls`: it
    came over a TLS connection, so a Status-Server needs no Message-Authenticator; `radius11`: a RADIUS/1.1 packet,
    authenticated by its TLS connection: nothing to check (RFC 9765).

    Raises Drop for anything that must get no answer.
    """
    data = framed(data)
    code = data[0]
    if code != ACCOUNTING_REQUEST and code != STATUS_SERVER:
        raise Drop(UNSUPPORTED_CODE)
    ma_offset, attributes = scan(data)
    authenticator = data[4:20]
    if radius11:
        if code == STATUS_SERVER:
            return AccountingRequest(code, 0, authenticator, echoed_proxy_states(attributes), radius11=True)
        return _session_record(code, 0, authenticator, attributes, radius11=True)
    if code == STATUS_SERVER:
        # The authenticator is random, as in an Access-Request: the Message-Authenticator is the proof (RFC 5997 §3).
        if not ma_offset:
            if not tls:
                raise Drop(MISSING_MESSAGE_AUTHENTICATOR)
        elif not message_authenticator_ok(data, ma_offset, secret):
            raise Drop(BAD_AUTHENTICATOR)
        return AccountingRequest(code, data[1], authenticator, echoed_proxy_states(attributes))
    if not authenticator_ok(data, ZERO16, secret):
        raise Drop(BAD_AUTHENTICATOR)
    # In an Accounting-Request the Message-Authenticator is computed with a zero Request Authenticator (which is
    # itself computed afterwards, over the packet that holds the Message-Authenticator).
    if ma_offset and not message_authenticator_ok(data, ma_offset, secret, ZERO16):
        raise Drop(BAD_AUTHENTICATOR)
    return _session_record(code, data[1], authenticator, attributes)


def _session_record(code: int, ident: int, authenticator: bytes, attributes: _Attributes, *,
                    radius11: bool = False) -> AccountingRequest:
    """The attributes of an authenticated Accounting-Request, read; Drop when one it must carry is missing."""
    proxy_state = echoed_proxy_states(attributes)
    status_type = _integer(attributes, ACCT_STATUS_TYPE)
    if status_type is None:
        raise Drop(MALFORMED)
    session_id = _string(attributes, ACCT_SESSION_ID)
    if status_type in (START, STOP, INTERIM_UPDATE) and not session_id:
        raise Drop(MALFORMED)  # RFC 2866 §5.5: every session record carries its Acct-Session-Id
    return AccountingRequest(
        code=code,
        id=ident,
        authenticator=authenticator,
        proxy_state=proxy_state,
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
        radius11=radius11,
    )


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
    number = _integer(attributes, ACCT_TERMINATE_CAUSE)
    return None if number is None else TERMINATE_CAUSES.get(number, str(number))
