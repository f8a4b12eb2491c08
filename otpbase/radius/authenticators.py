"""The proofs a RADIUS packet carries: Request and Response Authenticators (RFC 2865 §3, RFC 2866 §3) and the
Message-Authenticator (RFC 3579 §3.2), with the HMAC-MD5 they are made of.

Every check compares in constant time. `hmac_md5` keeps each key's inner and outer hash states: the shared secrets are
few, and this takes half the time of setting OpenSSL's HMAC up anew for each packet (the server's hot path).
"""

from __future__ import annotations

import hashlib
import hmac

from .constants import MESSAGE_AUTHENTICATOR

__all__ = [
    "MA_PLACEHOLDER",
    "ZERO16",
    "accounting_request_authenticator",
    "authenticator_ok",
    "hmac_md5",
    "message_authenticator_ok",
    "packet_authenticator",
    "signed",
]

ZERO16 = bytes(16)
MA_PLACEHOLDER = bytes((MESSAGE_AUTHENTICATOR, 18)) + ZERO16  # a Message-Authenticator before it is computed
_PADS: dict[bytes, tuple[hashlib._Hash, hashlib._Hash]] = {}  # key -> (inner, outer) hash states
_PADS_MAX = 1024


def hmac_md5(key: bytes, data: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104), as hmac.digest(key, data, "md5"), from the key's kept inner and outer hash states."""
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


def packet_authenticator(header: bytes, vector: bytes, attributes: bytes, secret: bytes) -> bytes:
    """MD5(Code + Identifier + Length + vector + Attributes + Secret). With the Request Authenticator as `vector`,
    the Response Authenticator of a reply (RFC 2865 §3, RFC 2866 §3); with 16 zero octets, the Request
    Authenticator of an Accounting-Request (RFC 2866 §3)."""
    return hashlib.md5(header + vector + attributes + secret).digest()


def accounting_request_authenticator(data: bytes, secret: bytes) -> bytes:
    """RFC 2866 §3: what the Authenticator field of this Accounting-Request must hold."""
    return packet_authenticator(data[:4], ZERO16, data[20:], secret)


def authenticator_ok(data: bytes, vector: bytes, secret: bytes) -> bool:
    """The Authenticator field of `data` is `packet_authenticator` over it with `vector` (constant time)."""
    return hmac.compare_digest(packet_authenticator(data[:4], vector, data[20:], secret), data[4:20])


def message_authenticator_ok(data: bytes, offset: int, secret: bytes, vector: bytes | None = None) -> bool:
    """The Message-Authenticator at `offset` is the HMAC-MD5 of the packet with it zeroed (constant time).

    `vector` stands in for the Authenticator field: the Request Authenticator for a reply (RFC 3579 §3.2), zeros for
    an Accounting-Request; None for an Access-Request or a Status-Server, which is signed as sent.
    """
    if vector is None:
        signed_over = data[:offset + 2] + ZERO16 + data[offset + 18:]
    else:
        signed_over = data[:4] + vector + data[20:offset + 2] + ZERO16 + data[offset + 18:]
    return hmac.compare_digest(hmac_md5(secret, signed_over), data[offset + 2:offset + 18])


def signed(header: bytes, vector: bytes, attributes: bytes, secret: bytes) -> bytes:
    """`attributes`, which start with MA_PLACEHOLDER, with their Message-Authenticator computed over header + vector
    + attributes (RFC 3579 §3.2)."""
    return attributes[:2] + hmac_md5(secret, header + vector + attributes) + attributes[18:]
