"""PAP User-Password hiding (RFC 2865 §5.2): the password, padded with NULs to a multiple of 16 octets, XORed with
the MD5 chain of the shared secret and the Request Authenticator.

Unhiding gives *bytes*: pyrad's `PwDecrypt` silently drops invalid UTF-8, so `b"pass\\xffword"` would match
`password`.
"""

from __future__ import annotations

import hashlib

from .constants import MAX_PASSWORD

__all__ = ["pap_hide", "pap_unhide"]


def pap_hide(password: bytes, secret: bytes, authenticator: bytes, *, limit: int | None = MAX_PASSWORD) -> bytes:
    """The hidden User-Password (16 to 128 octets). A password over `limit` octets is refused (ValueError); a fuzzer
    passes limit=None to hide any length and see the server refuse it."""
    if limit is not None and len(password) > limit:
        raise ValueError(f"a PAP password is at most {limit} octets")
    padded = password + bytes(-len(password) % 16 if password else 16)
    out = []
    last = authenticator
    for i in range(0, len(padded), 16):
        pad = hashlib.md5(secret + last).digest()
        last = (int.from_bytes(padded[i:i + 16]) ^ int.from_bytes(pad)).to_bytes(16)
        out.append(last)
    return b"".join(out)


def pap_unhide(hidden: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """The password of a hidden User-Password (a multiple of 16 octets: the caller checks). The trailing NUL padding
    is removed; nothing else is touched."""
    out = []
    last = authenticator
    for i in range(0, len(hidden), 16):
        block = hidden[i:i + 16]
        pad = hashlib.md5(secret + last).digest()
        out.append((int.from_bytes(block) ^ int.from_bytes(pad)).to_bytes(16))
        last = block
    return b"".join(out).rstrip(b"\x00")
