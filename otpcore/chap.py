"""Challenge-response logins: CHAP (RFC 1994), MS-CHAP (RFC 2433) and MS-CHAPv2 (RFC 2759). Sans-I/O.

The client never sends the one-time code: it proves it knows it (or the password followed by it) with a hash over a
challenge. The server tries each candidate, every code the user's tokens accept right now (the TOTP window, the HOTP
look-ahead), with the password before it when the first factor is a reversible password, until one `matches`. The
response remembers the candidate that did, so that an Accept can prove the server knew it too (MS-CHAPv2's
authenticator response) and hand the NAS the encryption keys derived from it (MPPE, RFC 3079).
"""

from __future__ import annotations

import hmac
from typing import NamedTuple

from . import mschap

__all__ = ["FIRST_FACTORS", "ChapResponse", "MsChap2Response", "MsChap2Success", "MsChapResponse", "Response"]

# The first factors a challenge-response login can be checked with: none (the code alone) and store (the user's
# reversible password, `otp-admin user passwd --reversible`). PAM and a directory need the password itself.
FIRST_FACTORS = ("none", "store")


class MsChap2Success(NamedTuple):
    """What an MS-CHAPv2 Accept carries: the authenticator response ("S=..." ) and the MPPE keys."""

    authenticator_response: bytes
    keys: mschap.MppeKeys


class Response:
    """A challenge-response proof. `entry` is what a failed try is remembered by (the same response sent again counts
    once); `matched` is the candidate secret that matched last (None: none yet)."""

    entry: bytes
    matched: str | None = None

    def matches(self, secret: str) -> bool:
        """Whether the client's response was computed with this secret (password + code, or the code)."""
        if self._expected(secret):
            self.matched = secret
            return True
        return False

    def _expected(self, secret: str) -> bool:
        raise NotImplementedError


class ChapResponse(Response):
    """CHAP-Password: the Identifier and MD5(Identifier + secret + challenge)."""

    def __init__(self, ident: int, response: bytes, challenge: bytes) -> None:
        self.ident = ident
        self.response = response
        self.challenge = challenge
        self.entry = b"chap:" + response

    def _expected(self, secret: str) -> bool:
        computed = mschap.chap_response(self.ident, secret.encode("utf-8", "surrogatepass"), self.challenge)
        return hmac.compare_digest(computed, self.response)


class MsChapResponse(Response):
    """MS-CHAP (version 1): the NT-Response to an 8-octet challenge."""

    def __init__(self, challenge: bytes, nt_response: bytes) -> None:
        self.challenge = challenge
        self.nt_response = nt_response
        self.entry = b"mschap:" + nt_response

    def _expected(self, secret: str) -> bool:
        return hmac.compare_digest(mschap.nt_response_v1(self.challenge, secret), self.nt_response)

    def mppe_keys(self) -> bytes:
        """MS-CHAP-MPPE-Keys before it is hidden, from the secret that matched."""
        assert self.matched is not None
        return mschap.mppe_keys_v1(self.matched)


class MsChap2Response(Response):
    """MS-CHAPv2: the peer's challenge and its NT-Response to our (the NAS's) challenge and the user's name."""

    def __init__(self, user: str, challenge: bytes, peer_challenge: bytes, nt_response: bytes) -> None:
        self.nt_response = nt_response
        self.challenge8 = mschap.challenge_hash(peer_challenge, challenge, mschap.peer_name(user))
        self.entry = b"mschapv2:" + nt_response

    def _expected(self, secret: str) -> bool:
        return hmac.compare_digest(mschap.nt_response_v2(self.challenge8, secret), self.nt_response)

    def success(self) -> MsChap2Success:
        """The authenticator response and the MPPE keys, from the secret that matched."""
        assert self.matched is not None
        return MsChap2Success(mschap.authenticator_response(self.matched, self.nt_response, self.challenge8),
                              mschap.mppe_keys_v2(self.matched, self.nt_response))
