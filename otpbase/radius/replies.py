"""The server's answers: Access-Accept / Reject / Challenge (and the answer to a Status-Server), Accounting-Response.

Every answer carries a Message-Authenticator as its first attribute, then what this server sends: Reply-Message,
State, the attributes its caller encoded, and the request's Proxy-States, unchanged and in order (RFC 2865 §5.33).
They are built directly (the hot path), the few Reply-Message texts there are encoded once.

The answer to a RADIUS/1.1 request (RFC 9765) has neither authenticator nor Message-Authenticator: its Reserved-1
octet is zero and its Authenticator field the request's Token followed by twelve zero octets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .authenticators import MA_PLACEHOLDER, ZERO16, packet_authenticator, signed
from .constants import ACCOUNTING_RESPONSE, MAX_PACKET, MAX_VALUE, PROXY_STATE, REPLY_MESSAGE, STATE, STATUS_SERVER
from .framing import attribute

__all__ = ["Answered", "encode_accounting_response", "encode_reply"]

_REPLY_MESSAGES: dict[str, bytes] = {}  # message -> its Reply-Message attributes
_REPLY_MESSAGES_MAX = 256


class Answered(Protocol):
    """What a reply takes from the request it answers (access.Request and accounting.AccountingRequest both)."""

    @property
    def code(self) -> int: ...

    @property
    def id(self) -> int: ...

    @property
    def authenticator(self) -> bytes: ...

    @property
    def proxy_state(self) -> tuple[bytes, ...]: ...

    @property
    def radius11(self) -> bool: ...


def encode_reply(code: int, request: Answered, secret: bytes, *, message: str = "", state: bytes | None = None,
                 extra: bytes = b"") -> bytes:
    """A signed reply to an Access-Request or Status-Server: Message-Authenticator, Reply-Message, State, `extra`
    (attributes the caller encoded: what an Accept grants, MS-CHAP's answer), the request's Proxy-States.

    The Message-Authenticator (RFC 3579 §3.2) is computed over the reply with the Request Authenticator in place of
    the Response Authenticator, which (RFC 2865 §3) is then computed over the reply with the Message-Authenticator.
    """
    parts = [b"" if request.radius11 else MA_PLACEHOLDER]
    if message:
        parts.append(_reply_message(message))
    if state is not None:
        parts.append(attribute(STATE, state))
    if extra:
        parts.append(extra)
    for value in request.proxy_state:
        parts.append(attribute(PROXY_STATE, value))
    return _signed_reply(code, request, b"".join(parts), secret, request.authenticator)


def encode_accounting_response(request: Answered, secret: bytes) -> bytes:
    """Accounting-Response: Message-Authenticator first, then the request's Proxy-States.

    The Response Authenticator is MD5 over the response with the Request Authenticator (RFC 2866 §3). The
    Message-Authenticator is computed with a zero authenticator, as in the Accounting-Request, except in the answer
    to a Status-Server, which uses its Request Authenticator (RFC 5997 §3; what FreeRADIUS and pyrad check).
    """
    proxy = b"".join(attribute(PROXY_STATE, value) for value in request.proxy_state)
    vector = request.authenticator if request.code == STATUS_SERVER else ZERO16
    return _signed_reply(ACCOUNTING_RESPONSE, request, proxy if request.radius11 else MA_PLACEHOLDER + proxy, secret,
                         vector)


def _signed_reply(code: int, request: Answered, attributes: bytes, secret: bytes, vector: bytes) -> bytes:
    length = 20 + len(attributes)
    if length > MAX_PACKET:
        raise ValueError("reply longer than 4096 octets")
    if request.radius11:  # RFC 9765 §4.1: Reserved-1 zero, the Token, Reserved-2 zero; nothing signed
        return bytes((code, 0, length >> 8, length & 0xFF)) + request.authenticator[:4] + ZERO16[:12] + attributes
    header = bytes((code, request.id, length >> 8, length & 0xFF))
    attributes = signed(header, vector, attributes, secret)
    return header + packet_authenticator(header, request.authenticator, attributes, secret) + attributes


def _reply_message(message: str) -> bytes:
    """The Reply-Message attributes of a message; the few messages there are are encoded once."""
    encoded = _REPLY_MESSAGES.get(message)
    if encoded is None:
        encoded = b"".join(attribute(REPLY_MESSAGE, chunk) for chunk in _chunks(message.encode("utf-8")))
        if len(_REPLY_MESSAGES) < _REPLY_MESSAGES_MAX:
            _REPLY_MESSAGES[message] = encoded
    return encoded


def _chunks(value: bytes) -> Sequence[bytes]:
    """A Reply-Message longer than one attribute is split; the client concatenates them (RFC 2865 §5.18)."""
    return [value[i:i + MAX_VALUE] for i in range(0, len(value), MAX_VALUE)] or [b""]
