"""Challenge-response attributes: CHAP-Password / CHAP-Challenge (RFC 2865 §5.3, §5.40) and Microsoft's vendor
attributes (RFC 2548: vendor 311): MS-CHAP-Challenge with MS-CHAP-Response (MS-CHAP, RFC 2433) or MS-CHAP2-Response
(MS-CHAPv2, RFC 2759) in a request; MS-CHAP2-Success, MS-CHAP-Error, the MPPE keys (hidden with the shared secret)
and the encryption policy in a reply. Standard library only: the hashes a server checks are otpcore.mschap's.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from .constants import CHAP_CHALLENGE, CHAP_PASSWORD, VENDOR_SPECIFIC
from .framing import MALFORMED, Drop, attribute
from .pap import pap_hide

__all__ = [
    "MICROSOFT",
    "ChapProof",
    "MsChap2Proof",
    "MsChapProof",
    "Proof",
    "decode_proof",
    "mschap2_accept",
    "mschap_accept",
    "mschap_error",
    "vendor_attributes",
]

MICROSOFT = 311  # the SMI Network Management Private Enterprise Code of Microsoft (RFC 2548 §2)
# Microsoft's attribute numbers (RFC 2548 §2.1-2.4, RFC 2759 §5-6 for MS-CHAP2-*)
MS_CHAP_RESPONSE = 1
MS_CHAP_ERROR = 2
MS_MPPE_ENCRYPTION_POLICY = 7
MS_MPPE_ENCRYPTION_TYPES = 8
MS_CHAP_CHALLENGE = 11
MS_CHAP_MPPE_KEYS = 12
MS_MPPE_SEND_KEY = 16
MS_MPPE_RECV_KEY = 17
MS_CHAP2_RESPONSE = 25
MS_CHAP2_SUCCESS = 26
ENCRYPTION_ALLOWED = 1  # MS-MPPE-Encryption-Policy (RFC 2548 §2.4.4): the NAS may encrypt, and asks for nothing more
TYPES_40_OR_128_BIT = 6  # MS-MPPE-Encryption-Types (§2.4.5): 40-bit (0x2) or 128-bit (0x4) RC4 keys
_CHAP_RESPONSE_SIZE = 50  # Ident, Flags, then LM and NT responses (MS-CHAP) or Peer-Challenge, Reserved, NT (v2)


class ChapProof(NamedTuple):
    """CHAP: the CHAP Identifier, MD5(Identifier + secret + challenge), and the challenge."""

    ident: int
    response: bytes
    challenge: bytes


class MsChapProof(NamedTuple):
    """MS-CHAP (version 1): the 8-octet challenge and the NT-Response."""

    ident: int
    challenge: bytes
    nt_response: bytes


class MsChap2Proof(NamedTuple):
    """MS-CHAPv2: the 16-octet authenticator challenge, the peer's challenge and the NT-Response."""

    ident: int
    challenge: bytes
    peer_challenge: bytes
    nt_response: bytes


Proof = ChapProof | MsChapProof | MsChap2Proof


def vendor_attributes(values: list[bytes], vendor: int = MICROSOFT) -> dict[int, list[bytes]]:
    """The sub-attributes of one vendor's Vendor-Specific attributes (RFC 2865 §5.26), by number, in order. Another
    vendor's are skipped; one of this vendor's whose sub-attributes do not add up is malformed (Drop)."""
    found: dict[int, list[bytes]] = {}
    prefix = vendor.to_bytes(4, "big")
    for value in values:
        if value[:4] != prefix:
            continue
        pos, end = 4, len(value)
        if pos == end:
            raise Drop(MALFORMED)
        while pos < end:
            if pos + 2 > end or value[pos + 1] < 2 or pos + value[pos + 1] > end:
                raise Drop(MALFORMED)
            found.setdefault(value[pos], []).append(value[pos + 2:pos + value[pos + 1]])
            pos += value[pos + 1]
    return found


def decode_proof(found: dict[int, list[bytes]], authenticator: bytes) -> tuple[Proof | None, bool]:
    """The challenge-response proof of a request (attributes as scanned), and whether it held such attributes that
    make no proof this server can check (an MS-CHAP response with only a LAN Manager response, a response without
    its challenge): those are an unsupported method. Wrong sizes, or two methods at once, are malformed (Drop)."""
    microsoft = vendor_attributes(found[VENDOR_SPECIFIC]) if VENDOR_SPECIFIC in found else {}
    methods = [a for a in (MS_CHAP_RESPONSE, MS_CHAP2_RESPONSE) if a in microsoft]
    if CHAP_PASSWORD in found:
        methods.append(CHAP_PASSWORD)
    if len(methods) > 1:
        raise Drop(MALFORMED)
    if not methods:
        return None, MS_CHAP_CHALLENGE in microsoft
    if methods[0] == CHAP_PASSWORD:
        return _chap(found, authenticator), False
    response = _single(microsoft, methods[0], _CHAP_RESPONSE_SIZE)
    challenges = microsoft.get(MS_CHAP_CHALLENGE)
    if challenges is None:
        return None, True
    if methods[0] == MS_CHAP2_RESPONSE:
        challenge = _single(microsoft, MS_CHAP_CHALLENGE, 16)
        return MsChap2Proof(response[0], challenge, response[2:18], response[26:50]), False
    challenge = _single(microsoft, MS_CHAP_CHALLENGE, 8)
    if not response[1] & 1:  # RFC 2548 §2.1.3: the NT-Response is to be ignored: a LAN Manager response only
        return None, True
    return MsChapProof(response[0], challenge, response[26:50]), False


def _chap(found: dict[int, list[bytes]], authenticator: bytes) -> ChapProof:
    password = _single(found, CHAP_PASSWORD, 17)
    challenges = found.get(CHAP_CHALLENGE)
    if challenges is not None and (len(challenges) != 1 or not challenges[0]):
        raise Drop(MALFORMED)
    # Without a CHAP-Challenge the Request Authenticator is the challenge (RFC 2865 §5.3).
    return ChapProof(password[0], password[1:], challenges[0] if challenges else authenticator)


def _single(found: dict[int, list[bytes]], number: int, size: int) -> bytes:
    values = found.get(number, [])
    if len(values) != 1 or len(values[0]) != size:
        raise Drop(MALFORMED)
    return values[0]


# -- replies ----------------------------------------------------------------------------------------------------------


def mschap2_accept(ident: int, authenticator_response: bytes, send_key: bytes, recv_key: bytes, secret: bytes,
                   request_authenticator: bytes) -> bytes:
    """What an Access-Accept of an MS-CHAPv2 login carries: MS-CHAP2-Success (the ident, "S=..."), the 128-bit MPPE
    keys hidden with salts (RFC 2548 §2.4.2-2.4.3), and the encryption policy."""
    send_salt, recv_salt = _salts()
    return b"".join((
        _vsa(MS_CHAP2_SUCCESS, bytes((ident,)) + authenticator_response),
        _vsa(MS_MPPE_SEND_KEY, _salt_hide(send_key, secret, request_authenticator, send_salt)),
        _vsa(MS_MPPE_RECV_KEY, _salt_hide(recv_key, secret, request_authenticator, recv_salt)),
        _encryption_policy(),
    ))


def mschap_accept(keys: bytes, secret: bytes, request_authenticator: bytes) -> bytes:
    """What an Access-Accept of an MS-CHAP (version 1) login carries: MS-CHAP-MPPE-Keys, hidden as a User-Password
    is (RFC 2548 §2.4.1), and the encryption policy."""
    return _vsa(MS_CHAP_MPPE_KEYS, pap_hide(keys, secret, request_authenticator)) + _encryption_policy()


def mschap_error(ident: int) -> bytes:
    """MS-CHAP-Error for an Access-Reject (RFC 2548 §2.1.5): ERROR_AUTHENTICATION_FAILURE, no retry."""
    return _vsa(MS_CHAP_ERROR, bytes((ident,)) + b"E=691 R=0 V=3")


def _encryption_policy() -> bytes:
    return (_vsa(MS_MPPE_ENCRYPTION_POLICY, ENCRYPTION_ALLOWED.to_bytes(4, "big"))
            + _vsa(MS_MPPE_ENCRYPTION_TYPES, TYPES_40_OR_128_BIT.to_bytes(4, "big")))


def _vsa(number: int, value: bytes) -> bytes:
    return attribute(VENDOR_SPECIFIC, MICROSOFT.to_bytes(4, "big") + bytes((number, len(value) + 2)) + value)


def _salts() -> tuple[bytes, bytes]:
    """Two different salts, each with its most significant bit set (RFC 2548 §2.4.2: unique within the reply)."""
    send = bytearray(os.urandom(2))
    send[0] |= 0x80
    recv = bytearray(send)
    recv[1] ^= 1
    return bytes(send), bytes(recv)


def _salt_hide(key: bytes, secret: bytes, request_authenticator: bytes, salt: bytes) -> bytes:
    """RFC 2548 §2.4.2: the salt, then the key's length and the key, padded, hidden with the MD5 chain of the secret,
    the Request Authenticator and the salt (the User-Password chain, started from authenticator + salt)."""
    return salt + pap_hide(bytes((len(key),)) + key, secret, request_authenticator + salt, limit=None)
