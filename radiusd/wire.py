"""RADIUS on the wire: decoding and checking requests, encoding replies.

The few attributes a decision needs are read in the same pass that checks the framing (RFC 2865 §3, §5; pyrad would
accept a last attribute running past the packet); the Message-Authenticator of requests is verified in constant time
over the bytes received (RFC 3579 §3.2), with the policy on missing ones (BlastRADIUS, RFC 5997 §3); the PAP
User-Password is decrypted to *bytes* (pyrad's `PwDecrypt` silently drops invalid UTF-8, so `b"pass\\xffword"` would
match `password`). Replies are built directly: they hold only Message-Authenticator, Reply-Message, State and
Proxy-State. This is the hot path of the server, so it does not go through pyrad's dictionary-driven packets.

Everything here is pure: bytes in, a `Request` or a `Drop` out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = [
    "ACCESS_ACCEPT",
    "ACCESS_CHALLENGE",
    "ACCESS_REJECT",
    "ACCESS_REQUEST",
    "BAD_AUTHENTICATOR",
    "MALFORMED",
    "MAX_PACKET",
    "MISSING_MESSAGE_AUTHENTICATOR",
    "STATUS_SERVER",
    "UNSUPPORTED_CODE",
    "Drop",
    "Request",
    "decode_request",
    "encode_reply",
    "hmac_md5",
    "pap_decrypt",
    "pap_encrypt",
]

# Packet codes (RFC 2865 §3, RFC 5997).
ACCESS_REQUEST = 1
ACCESS_ACCEPT = 2
ACCESS_REJECT = 3
ACCESS_CHALLENGE = 11
STATUS_SERVER = 12

# Attribute numbers (RFC 2865 §5, RFC 2869).
USER_NAME = 1
USER_PASSWORD = 2
CHAP_PASSWORD = 3
REPLY_MESSAGE = 18
STATE = 24
PROXY_STATE = 33
ARAP_PASSWORD = 70
EAP_MESSAGE = 79
MESSAGE_AUTHENTICATOR = 80

MAX_PACKET = 4096  # RFC 2865 §3
_REPLY_ROOM = 512  # header, Message-Authenticator, State and our short Reply-Message, beside the echoed Proxy-States
_MAX_VALUE = 253
_ZERO16 = bytes(16)
_MA_HEADER = bytes((MESSAGE_AUTHENTICATOR, 18))
_MA_PLACEHOLDER = _MA_HEADER + _ZERO16
_PADS: dict[bytes, tuple[Any, Any]] = {}  # hmac_md5: key -> (inner, outer) hash states
_PADS_MAX = 1024
_REPLY_MESSAGES: dict[str, bytes] = {}  # _reply_message: message -> its attributes
_REPLY_MESSAGES_MAX = 256
# The attributes a request is decided on; the decoder keeps only these.
_WANTED = frozenset((USER_NAME, USER_PASSWORD, CHAP_PASSWORD, STATE, PROXY_STATE, ARAP_PASSWORD, EAP_MESSAGE,
                     MESSAGE_AUTHENTICATOR))

# Reasons a request is dropped; each is a counter of the server.
MALFORMED = "malformed"
BAD_AUTHENTICATOR = "bad_authenticator"
MISSING_MESSAGE_AUTHENTICATOR = "missing_message_authenticator"
UNSUPPORTED_CODE = "unsupported_code"


class Drop(Exception):
    """The packet is discarded silently; `reason` names the counter it adds to."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Request(NamedTuple):
    """A decoded, authenticated request. For Status-Server only code, id, authenticator and proxy_state are set."""

    code: int
    id: int
    authenticator: bytes
    proxy_state: tuple[bytes, ...] = ()
    user: str = ""
    password: bytes | None = None  # the PAP User-Password, decrypted, trailing NUL padding removed
    state: bytes | None = None
    other_auth: bool = False  # CHAP, EAP or ARAP: methods that cannot carry a one-time password


def decode_request(data: bytes, secret: bytes, *, require_message_authenticator: bool) -> Request:
    """Check and decode an Access-Request or Status-Server from a client with this shared secret.

    Raises Drop for anything that must get no answer.
    """
    size = len(data)
    if size < 20:
        raise Drop(MALFORMED)
    length = (data[2] << 8) | data[3]
    if length < 20 or length > size or length > MAX_PACKET:
        raise Drop(MALFORMED)
    if length < size:
        data = data[:length]  # octets past the Length field are padding (RFC 2865 §3)
    code = data[0]
    if code != ACCESS_REQUEST and code != STATUS_SERVER:
        raise Drop(UNSUPPORTED_CODE)
    ma_offset, found = _scan(data)
    authenticator = data[4:20]

    if ma_offset:
        signed = data[:ma_offset + 2] + _ZERO16 + data[ma_offset + 18:]
        if not hmac.compare_digest(hmac_md5(secret, signed), data[ma_offset + 2:ma_offset + 18]):
            raise Drop(BAD_AUTHENTICATOR)
    elif require_message_authenticator or code == STATUS_SERVER or PROXY_STATE in found:
        # RFC 5997 §3 for Status-Server; Proxy-State without a Message-Authenticator is the BlastRADIUS pattern.
        raise Drop(MISSING_MESSAGE_AUTHENTICATOR)
    proxy_state = tuple(found.get(PROXY_STATE, ()))
    if sum(len(v) + 2 for v in proxy_state) > MAX_PACKET - _REPLY_ROOM:
        raise Drop(MALFORMED)  # its reply, which echoes them, could not be sent: refuse before deciding anything

    if code == STATUS_SERVER:
        return Request(code, data[1], authenticator, proxy_state)

    names = found.get(USER_NAME)
    if names is None or len(names) != 1 or not names[0]:
        raise Drop(MALFORMED)
    try:
        user = names[0].decode("utf-8")
    except UnicodeDecodeError:
        raise Drop(MALFORMED) from None

    other_auth = CHAP_PASSWORD in found or EAP_MESSAGE in found or ARAP_PASSWORD in found
    password = None
    hidden = found.get(USER_PASSWORD)
    if hidden is not None:
        if len(hidden) != 1 or other_auth:
            raise Drop(MALFORMED)
        value = hidden[0]
        if len(value) < 16 or len(value) > 128 or len(value) % 16:  # RFC 2865 §5.2
            raise Drop(MALFORMED)
        password = pap_decrypt(value, secret, authenticator)

    state = None
    states = found.get(STATE)
    if states is not None:
        if len(states) != 1:
            raise Drop(MALFORMED)
        state = states[0]

    return Request(code, data[1], authenticator, proxy_state, user, password, state, other_auth)


def _scan(data: bytes) -> tuple[int, dict[int, list[bytes]]]:
    """Check the attribute framing (RFC 2865 §5: a last attribute running past the packet discards it, where pyrad
    would accept it); return the offset of the Message-Authenticator (0 when there is none) and the values of the
    attributes a request is decided on, by number. Everything else (vendor attributes included) is skipped."""
    pos = 20
    end = len(data)
    ma_offset = 0
    found: dict[int, list[bytes]] = {}
    wanted = _WANTED
    while pos < end:
        if pos + 2 > end:
            raise Drop(MALFORMED)
        kind = data[pos]
        size = data[pos + 1]
        if size < 2 or pos + size > end:
            raise Drop(MALFORMED)
        if kind in wanted:
            if kind == MESSAGE_AUTHENTICATOR:
                if ma_offset or size != 18:
                    raise Drop(MALFORMED)
                ma_offset = pos
            else:
                values = found.get(kind)
                if values is None:
                    found[kind] = [data[pos + 2:pos + size]]
                else:
                    values.append(data[pos + 2:pos + size])
        pos += size
    return ma_offset, found


def pap_decrypt(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 §5.2, to bytes. Trailing NUL padding is removed; nothing else is touched."""
    out = []
    last = authenticator
    for i in range(0, len(hidden), 16):
        block = hidden[i:i + 16]
        pad = hashlib.md5(secret + last).digest()
        out.append((int.from_bytes(block) ^ int.from_bytes(pad)).to_bytes(16))
        last = block
    return b"".join(out).rstrip(b"\x00")


def pap_encrypt(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 §5.2: hide a password of up to 128 octets (the client side, for tests and tools)."""
    if len(password) > 128:
        raise ValueError("a PAP password is at most 128 octets")
    padded = password + bytes(-len(password) % 16 if password else 16)
    out = []
    last = authenticator
    for i in range(0, len(padded), 16):
        pad = hashlib.md5(secret + last).digest()
        last = (int.from_bytes(padded[i:i + 16]) ^ int.from_bytes(pad)).to_bytes(16)
        out.append(last)
    return b"".join(out)


def encode_reply(code: int, request: Request, secret: bytes, *, message: str = "", state: bytes | None = None
                 ) -> bytes:
    """A signed reply: Message-Authenticator first, then Reply-Message, State, and the request's Proxy-States.

    The Message-Authenticator (RFC 3579 §3.2) is computed over the reply with the Request Authenticator in place of
    the Response Authenticator, which (RFC 2865 §3) is then computed over the reply with the Message-Authenticator.
    """
    parts = [_MA_PLACEHOLDER]
    if message:
        parts.append(_reply_message(message))
    if state is not None:
        parts.append(_attribute(STATE, state))
    for value in request.proxy_state:  # unchanged and in order (RFC 2865 §5.33)
        parts.append(_attribute(PROXY_STATE, value))
    attributes = b"".join(parts)
    length = 20 + len(attributes)
    if length > MAX_PACKET:
        raise ValueError("reply longer than 4096 octets")
    header = bytes((code, request.id, length >> 8, length & 0xFF))
    signature = hmac_md5(secret, header + request.authenticator + attributes)
    attributes = _MA_HEADER + signature + attributes[18:]
    return header + hashlib.md5(header + request.authenticator + attributes + secret).digest() + attributes


def hmac_md5(key: bytes, data: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104), as hmac.digest(key, data, "md5"), with the key's inner and outer hash states kept: the
    shared secrets are few, and this takes half the time of setting OpenSSL's HMAC up anew for each packet."""
    pads = _PADS.get(key)
    if pads is None:
        block = (hashlib.md5(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        pads = (hashlib.md5(bytes(b ^ 0x36 for b in block)), hashlib.md5(bytes(b ^ 0x5C for b in block)))
        if len(_PADS) >= _PADS_MAX:
            _PADS.clear()
        _PADS[key] = pads
    inner = pads[0].copy()
    inner.update(data)
    outer = pads[1].copy()
    outer.update(inner.digest())
    return outer.digest()


def _reply_message(message: str) -> bytes:
    """The Reply-Message attributes of a message; the few messages there are are encoded once."""
    encoded = _REPLY_MESSAGES.get(message)
    if encoded is None:
        encoded = b"".join(_attribute(REPLY_MESSAGE, chunk) for chunk in _chunks(message.encode("utf-8")))
        if len(_REPLY_MESSAGES) < _REPLY_MESSAGES_MAX:
            _REPLY_MESSAGES[message] = encoded
    return encoded


def _attribute(kind: int, value: bytes) -> bytes:
    if len(value) > _MAX_VALUE:
        raise ValueError(f"attribute {kind} longer than {_MAX_VALUE} octets")
    return bytes((kind, len(value) + 2)) + value


def _chunks(value: bytes) -> Sequence[bytes]:
    """A Reply-Message longer than one attribute is split; the client concatenates them (RFC 2865 §5.18)."""
    return [value[i:i + _MAX_VALUE] for i in range(0, len(value), _MAX_VALUE)] or [b""]
