"""The client side: signed requests, and the check of the replies to them.

Used by the PAM module's radius mode, which runs inside sshd or sudo and must import only the standard library (this
module imports neither `typing` nor `dataclasses`: tests/pam/test_imports.py), and by bench's load generator. A
request carries a Message-Authenticator as its first attribute; a reply counts only if it answers the request (code
and Identifier), its Response Authenticator is right and it carries a right Message-Authenticator (RFC 3579 for
Access-Challenge; the BlastRADIUS lesson for Access-Accept and Access-Reject).
"""

from __future__ import annotations

from collections.abc import Iterable

from .authenticators import MA_PLACEHOLDER, authenticator_ok, message_authenticator_ok, signed
from .constants import (
    ACCESS_REPLIES,
    ACCESS_REQUEST,
    HEADER,
    MAX_PACKET,
    REPLY_MESSAGE,
    STATE,
    STATUS_SERVER,
    USER_NAME,
    USER_PASSWORD,
)
from .framing import BAD_AUTHENTICATOR, MISSING_MESSAGE_AUTHENTICATOR, NOT_A_REPLY, Drop, attribute, framed, scan
from .pap import pap_hide

__all__ = ["Reply", "access_request", "decode_reply", "encode_request", "status_server"]

_REPLY_ATTRIBUTES = frozenset((REPLY_MESSAGE, STATE))


def encode_request(code: int, ident: int, authenticator: bytes, secret: bytes,
                   attributes: Iterable[tuple[int, bytes]]) -> bytes:
    """A request: Message-Authenticator first, then `attributes` (type, value), signed over the whole packet.

    A value must be 1 to 253 octets (ValueError otherwise: no server takes an empty User-Name or State).
    """
    parts = [MA_PLACEHOLDER]
    for kind, value in attributes:
        if not value:
            raise ValueError(f"attribute {kind}: an empty value")
        parts.append(attribute(kind, value))
    body = b"".join(parts)
    length = HEADER + len(body)
    if length > MAX_PACKET:
        raise ValueError(f"a request of {length} octets is longer than {MAX_PACKET}")
    header = bytes((code, ident & 0xFF, length >> 8, length & 0xFF))
    return header + authenticator + signed(header, authenticator, body, secret)


def access_request(ident: int, authenticator: bytes, secret: bytes, *, user: str, password: bytes,
                   attributes: Iterable[tuple[int, bytes]] = ()) -> bytes:
    """A PAP Access-Request: Message-Authenticator, User-Name, User-Password (hidden), then `attributes`.
    ValueError for a value that does not fit its attribute (a password over 128 octets, say)."""
    hidden = pap_hide(password, secret, authenticator)
    return encode_request(ACCESS_REQUEST, ident, authenticator, secret,
                          ((USER_NAME, user.encode()), (USER_PASSWORD, hidden), *attributes))


def status_server(ident: int, authenticator: bytes, secret: bytes,
                  attributes: Iterable[tuple[int, bytes]] = ()) -> bytes:
    """A Status-Server (RFC 5997): its Message-Authenticator is what proves it."""
    return encode_request(STATUS_SERVER, ident, authenticator, secret, attributes)


class Reply:
    """A checked reply: its code, its Reply-Message and its State."""

    __slots__ = ("code", "message", "state")

    def __init__(self, code: int, message: str, state: bytes | None) -> None:
        self.code = code
        self.message = message
        self.state = state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"


def decode_reply(data: bytes, request: bytes, secret: bytes, *, codes: frozenset[int] = ACCESS_REPLIES,
                 require_message_authenticator: bool = True) -> Reply:
    """The reply to `request` (the bytes sent), checked; Drop when it is not an authentic answer to it, which the
    caller ignores (a forged or stray packet). `codes`: the answers the request may get. A Message-Authenticator is
    always checked when there is one; without `require_message_authenticator` (for servers that sign no reply, such
    as FreeRADIUS before 3.2.5, the benchmark's reference) a reply may lack one."""
    data = framed(data)
    if data[0] not in codes or data[1] != request[1]:
        raise Drop(NOT_A_REPLY)
    vector = request[4:20]
    if not authenticator_ok(data, vector, secret):
        raise Drop(BAD_AUTHENTICATOR)
    ma_offset, found = scan(data, _REPLY_ATTRIBUTES)
    if ma_offset:
        if not message_authenticator_ok(data, ma_offset, secret, vector):
            raise Drop(BAD_AUTHENTICATOR)
    elif require_message_authenticator:
        raise Drop(MISSING_MESSAGE_AUTHENTICATOR)
    states = found.get(STATE)
    # A long message comes split over several Reply-Messages, a character maybe across two (RFC 2865 §5.18).
    message = b"".join(found.get(REPLY_MESSAGE, ())).decode("utf-8", "replace")
    return Reply(data[0], message, states[0] if states else None)
