"""The framing of a RADIUS packet: the header checks, the one-pass attribute scan, attribute encoding, and `Drop`.

RFC 2865 §3: a packet shorter than its Length field is discarded, octets past it are padding; §5: an attribute whose
Length is below 2 or runs past the packet discards the whole packet (pyrad would accept a last attribute running past
the end). A packet that fails any check raises `Drop`, whose reason names the counter it adds to: the packet gets no
answer.
"""

from __future__ import annotations

from .constants import HEADER, MAX_PACKET, MAX_VALUE, MESSAGE_AUTHENTICATOR, PROXY_STATE

__all__ = [
    "ALL_ATTRIBUTES",
    "BAD_AUTHENTICATOR",
    "MALFORMED",
    "MISSING_MESSAGE_AUTHENTICATOR",
    "NOT_A_REPLY",
    "REPLY_ROOM",
    "UNSUPPORTED_CODE",
    "Drop",
    "attribute",
    "echoed_proxy_states",
    "framed",
    "scan",
    "stream_length",
]

# Reasons a packet is dropped; each is a counter of the server.
MALFORMED = "malformed"
BAD_AUTHENTICATOR = "bad_authenticator"
MISSING_MESSAGE_AUTHENTICATOR = "missing_message_authenticator"
UNSUPPORTED_CODE = "unsupported_code"
NOT_A_REPLY = "not_a_reply"  # client side: another code, or another Identifier, than the request's answer

ALL_ATTRIBUTES = frozenset(range(256))
REPLY_ROOM = 512  # header, Message-Authenticator, State and our short Reply-Message, beside the echoed Proxy-States


class Drop(Exception):
    """The packet is discarded silently; `reason` names the counter it adds to."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def framed(data: bytes) -> bytes:
    """The packet as its Length field says (RFC 2865 §3): at least a header, at most 4096 octets, no longer than the
    datagram; the octets past it are padding and are cut off."""
    size = len(data)
    if size < HEADER:
        raise Drop(MALFORMED)
    length = (data[2] << 8) | data[3]
    if length < HEADER or length > size or length > MAX_PACKET:
        raise Drop(MALFORMED)
    return data if length == size else data[:length]


def stream_length(header: bytes | bytearray) -> int:
    """The Length field of the packet whose first four octets are `header`, read from a stream (RADIUS over TLS);
    Drop (malformed) when it is out of bounds: the stream cannot be framed any further (RFC 6613 §2.6.4)."""
    length = (header[2] << 8) | header[3]
    if length < HEADER or length > MAX_PACKET:
        raise Drop(MALFORMED)
    return length


def scan(data: bytes, wanted: frozenset[int] = ALL_ATTRIBUTES) -> tuple[int, dict[int, list[bytes]]]:
    """Check the attribute framing of a `framed` packet in one pass; return the offset of its Message-Authenticator
    (0: none; two, or one not 16 octets long, are malformed) and the values of the `wanted` attributes, by number
    and in order. Everything else (vendor attributes included) is skipped."""
    pos = HEADER
    end = len(data)
    ma_offset = 0
    found: dict[int, list[bytes]] = {}
    while pos < end:
        if pos + 2 > end:
            raise Drop(MALFORMED)
        kind = data[pos]
        size = data[pos + 1]
        if size < 2 or pos + size > end:
            raise Drop(MALFORMED)
        if kind == MESSAGE_AUTHENTICATOR:
            if ma_offset or size != 18:
                raise Drop(MALFORMED)
            ma_offset = pos
        elif kind in wanted:
            values = found.get(kind)
            if values is None:
                found[kind] = [data[pos + 2:pos + size]]
            else:
                values.append(data[pos + 2:pos + size])
        pos += size
    return ma_offset, found


def echoed_proxy_states(found: dict[int, list[bytes]]) -> tuple[bytes, ...]:
    """The Proxy-States of a request, which its reply echoes (RFC 2865 §5.33). Drop (malformed) when they would
    leave the reply no room: it could not be sent, so the request is refused before anything is decided."""
    values = found.get(PROXY_STATE)
    if values is None:
        return ()
    if sum(len(v) + 2 for v in values) > MAX_PACKET - REPLY_ROOM:
        raise Drop(MALFORMED)
    return tuple(values)


def attribute(kind: int, value: bytes) -> bytes:
    """One attribute: Type, Length, Value. A value longer than 253 octets cannot be one attribute (ValueError)."""
    if len(value) > MAX_VALUE:
        raise ValueError(f"attribute {kind}: a value of {len(value)} octets is longer than {MAX_VALUE}")
    return bytes((kind, len(value) + 2)) + value
