"""The server side of an Access-Request or a Status-Server: bytes in, an authenticated `Request` or a `Drop` out.

The few attributes a decision needs are read in the same pass that checks the framing; the Message-Authenticator is
verified in constant time over the bytes received (RFC 3579 §3.2), with the policy on missing ones: a client may be
required to send one; a Status-Server always must (RFC 5997 §3); and a request carrying Proxy-State without one is
the BlastRADIUS pattern, dropped whatever the client's setting. The PAP User-Password is unhidden to bytes. This is
the hot path of the server: it does not go through pyrad's dictionary-driven packets.

Over RADIUS/1.1 (RFC 9765, negotiated on a TLS connection) nothing is MD5: TLS authenticates the packet, a
Message-Authenticator is ignored, the User-Password is the password itself, and the Authenticator field carries the
Token (its first four octets) that the reply echoes.
"""

from __future__ import annotations

from typing import NamedTuple

from .authenticators import message_authenticator_ok
from .chap import Proof, decode_proof
from .constants import (
    ACCESS_REQUEST,
    ARAP_PASSWORD,
    CHAP_CHALLENGE,
    CHAP_PASSWORD,
    EAP_MESSAGE,
    MAX_PASSWORD,
    MESSAGE_AUTHENTICATOR,
    PROXY_STATE,
    STATE,
    STATUS_SERVER,
    USER_NAME,
    USER_PASSWORD,
    VENDOR_SPECIFIC,
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
from .pap import pap_unhide

__all__ = ["Request", "decode_request"]

# The attributes a request is decided on; the decoder keeps only these.
_WANTED = frozenset((USER_NAME, USER_PASSWORD, CHAP_PASSWORD, CHAP_CHALLENGE, STATE, PROXY_STATE, ARAP_PASSWORD,
                     EAP_MESSAGE, VENDOR_SPECIFIC, MESSAGE_AUTHENTICATOR))


class Request(NamedTuple):
    """A decoded, authenticated request. For Status-Server only code, id, authenticator and proxy_state are set."""

    code: int
    id: int
    authenticator: bytes
    proxy_state: tuple[bytes, ...] = ()
    user: str = ""
    password: bytes | None = None  # the PAP User-Password, unhidden, trailing NUL padding removed
    state: bytes | None = None
    other_auth: bool = False  # EAP, ARAP or an MS-CHAP response that makes no proof: methods this server cannot check
    radius11: bool = False  # came over RADIUS/1.1: the reply carries the Token and no MD5 (replies.encode_reply)
    proof: Proof | None = None  # CHAP, MS-CHAP or MS-CHAPv2 (the code, or password + code, proved by a hash)


def decode_request(data: bytes, secret: bytes, *, require_message_authenticator: bool, tls: bool = False,
                   radius11: bool = False) -> Request:
    """Check and decode an Access-Request or Status-Server from a client with this shared secret. `tls`: it came
    over a TLS connection, which authenticates it: a Message-Authenticator is checked when there is one, never
    required (BlastRADIUS needs a forged UDP packet). `radius11`: a RADIUS/1.1 packet, which has no secret.

    Raises Drop for anything that must get no answer.
    """
    data = framed(data)
    code = data[0]
    if code != ACCESS_REQUEST and code != STATUS_SERVER:
        raise Drop(UNSUPPORTED_CODE)
    ma_offset, found = scan(data, _WANTED)
    if radius11:
        pass  # RFC 9765 §5.2: TLS authenticates the packet; a Message-Authenticator means nothing
    elif ma_offset:
        if not message_authenticator_ok(data, ma_offset, secret):
            raise Drop(BAD_AUTHENTICATOR)
    elif (require_message_authenticator or code == STATUS_SERVER or PROXY_STATE in found) and not tls:
        raise Drop(MISSING_MESSAGE_AUTHENTICATOR)
    proxy_state = echoed_proxy_states(found)
    authenticator = data[4:20]
    if code == STATUS_SERVER:
        return Request(code, data[1], authenticator, proxy_state, radius11=radius11)

    names = found.get(USER_NAME)
    if names is None or len(names) != 1 or not names[0]:
        raise Drop(MALFORMED)
    try:
        user = names[0].decode("utf-8")
    except UnicodeDecodeError:
        raise Drop(MALFORMED) from None
    proof, other_auth = None, EAP_MESSAGE in found or ARAP_PASSWORD in found
    if not other_auth and (CHAP_PASSWORD in found or VENDOR_SPECIFIC in found):
        proof, other_auth = decode_proof(found, authenticator)
    password = None
    hidden = found.get(USER_PASSWORD)
    if hidden is not None:
        if len(hidden) != 1 or other_auth or proof is not None or CHAP_PASSWORD in found:
            raise Drop(MALFORMED)
        value = hidden[0]
        if radius11:  # RFC 9765 §5.1.1: the password itself, 1 to 128 octets
            if not value or len(value) > MAX_PASSWORD:
                raise Drop(MALFORMED)
            password = value
        elif len(value) < 16 or len(value) > MAX_PASSWORD or len(value) % 16:  # RFC 2865 §5.2
            raise Drop(MALFORMED)
        else:
            password = pap_unhide(value, secret, authenticator)
    state = None
    states = found.get(STATE)
    if states is not None:
        if len(states) != 1:
            raise Drop(MALFORMED)
        state = states[0]
    return Request(code, data[1], authenticator, proxy_state, user, password, state, other_auth, radius11, proof)
