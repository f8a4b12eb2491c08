"""The maths of CHAP (RFC 1994), MS-CHAP (RFC 2433), MS-CHAPv2 (RFC 2759) and the MPPE keys (RFC 3079). Sans-I/O.

MD4 and DES come from pycryptodome (hashlib has no MD4 on OpenSSL 3, and `cryptography` has neither), imported on
first use: a PAM login never needs them. Only what a server computes is here: the responses it compares, its
authenticator response, and the keys it hands the NAS.
"""

from __future__ import annotations

import hashlib
from functools import cache
from types import ModuleType
from typing import NamedTuple

__all__ = [
    "MppeKeys",
    "asymmetric_start_key",
    "authenticator_response",
    "challenge_hash",
    "challenge_response",
    "chap_response",
    "master_key",
    "mppe_keys_v1",
    "mppe_keys_v2",
    "nt_password_hash",
    "nt_response_v1",
    "nt_response_v2",
    "password_hash_hash",
    "peer_name",
]

# RFC 2759 §8.7
_SIGNING_MAGIC = b"Magic server to client signing constant"
_PAD_MAGIC = b"Pad to make it do more than one iteration"
# RFC 3079 §3.4
_MASTER_MAGIC = b"This is the MPPE Master Key"
_CLIENT_SEND_MAGIC = b"On the client side, this is the send key; on the server side, it is the receive key."
_SERVER_SEND_MAGIC = b"On the client side, this is the receive key; on the server side, it is the send key."
_SHS_PAD1 = bytes(40)
_SHS_PAD2 = b"\xf2" * 40


@cache
def _crypto() -> tuple[ModuleType, ModuleType]:
    from Crypto.Cipher import DES  # pycryptodome
    from Crypto.Hash import MD4

    return MD4, DES


def chap_response(ident: int, secret: bytes, challenge: bytes) -> bytes:
    """RFC 1994 §4.1: MD5(Identifier + secret + Challenge)."""
    return hashlib.md5(bytes((ident,)) + secret + challenge).digest()


def peer_name(user: str) -> bytes:
    """The name the NT-Response is computed over: the user name without a `DOMAIN\\` prefix (RFC 2759 §4)."""
    return user.rpartition("\\")[2].encode("utf-8", "surrogatepass")


def nt_password_hash(password: str) -> bytes:
    """RFC 2759 §8.3: MD4 of the password in UTF-16LE."""
    md4, _ = _crypto()
    return bytes(md4.new(password.encode("utf-16-le", "surrogatepass")).digest())


def password_hash_hash(password_hash: bytes) -> bytes:
    """RFC 2759 §8.4: MD4 of the NT password hash."""
    md4, _ = _crypto()
    return bytes(md4.new(password_hash).digest())


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, name: bytes) -> bytes:
    """RFC 2759 §8.2: the 8-octet challenge an MS-CHAPv2 NT-Response answers."""
    return hashlib.sha1(peer_challenge + authenticator_challenge + name).digest()[:8]


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """RFC 2759 §8.5: the 8-octet challenge DES-encrypted under each 7 octets of the zero-padded 21-octet hash."""
    _, des = _crypto()
    key = password_hash.ljust(21, b"\0")
    return b"".join(des.new(_des_key(key[i:i + 7]), des.MODE_ECB).encrypt(challenge) for i in (0, 7, 14))


def nt_response_v1(challenge: bytes, password: str) -> bytes:
    """RFC 2433 §A.5: the MS-CHAP (version 1) NT-Response to an 8-octet challenge."""
    return challenge_response(challenge, nt_password_hash(password))


def nt_response_v2(challenge8: bytes, password: str) -> bytes:
    """RFC 2759 §8.1, given the challenge hash (computed once per request, for every candidate password)."""
    return challenge_response(challenge8, nt_password_hash(password))


def authenticator_response(password: str, nt_response: bytes, challenge8: bytes) -> bytes:
    """RFC 2759 §8.7: "S=" and 40 upper-case hexadecimal digits, what MS-CHAP2-Success carries after its ident."""
    digest = hashlib.sha1(password_hash_hash(nt_password_hash(password)) + nt_response + _SIGNING_MAGIC).digest()
    digest = hashlib.sha1(digest + challenge8 + _PAD_MAGIC).digest()
    return b"S=" + digest.hex().upper().encode()


class MppeKeys(NamedTuple):
    """The initial MPPE keys the NAS encrypts with, from the server's side: the key it sends with, the one it
    receives with."""

    send_key: bytes
    recv_key: bytes


def master_key(password: str, nt_response: bytes) -> bytes:
    """RFC 3079 §3.4 GetMasterKey."""
    hash_hash = password_hash_hash(nt_password_hash(password))
    return hashlib.sha1(hash_hash + nt_response + _MASTER_MAGIC).digest()[:16]


def asymmetric_start_key(master: bytes, *, send: bool, server: bool = True, length: int = 16) -> bytes:
    """RFC 3079 §3.4 GetAsymmetricStartKey: the server's send key is the client's receive key."""
    magic = _SERVER_SEND_MAGIC if send == server else _CLIENT_SEND_MAGIC
    return hashlib.sha1(master + _SHS_PAD1 + magic + _SHS_PAD2).digest()[:length]


def mppe_keys_v2(password: str, nt_response: bytes) -> MppeKeys:
    """The 128-bit MPPE keys of an MS-CHAPv2 login (RFC 3079 §3.4; as FreeRADIUS sends them)."""
    master = master_key(password, nt_response)
    return MppeKeys(asymmetric_start_key(master, send=True), asymmetric_start_key(master, send=False))


def mppe_keys_v1(password: str) -> bytes:
    """MS-CHAP-MPPE-Keys of an MS-CHAP (version 1) login before it is hidden (RFC 2548 §2.4.1): no LM key (8 zeros)
    and the NT key, which is the hash of the NT password hash (RFC 3079 §2.4; what Windows and FreeRADIUS use)."""
    return bytes(8) + password_hash_hash(nt_password_hash(password))


def _des_key(seven: bytes) -> bytes:
    """Seven key octets spread over eight, one parity bit each (RFC 2759 §8.6 DesEncrypt)."""
    bits = int.from_bytes(seven, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))
