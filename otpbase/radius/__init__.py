"""The RADIUS codec, once for every door and tool that speaks RADIUS (standard library only).

- `constants`: packet codes, attribute numbers and values, sizes (re-exported here with `Drop` and its reasons);
- `framing`: the header and attribute-framing checks, the one-pass attribute scan, `Drop` and its reasons;
- `authenticators`: Request/Response Authenticators, Message-Authenticator compute and check, the fast HMAC-MD5;
- `pap`: User-Password hiding and unhiding (to bytes);
- `access`: the server side of an Access-Request or Status-Server (decode and authenticate);
- `accounting`: the server side of an Accounting-Request;
- `replies`: the server's replies (access and accounting);
- `client`: building signed requests and checking replies (the PAM module's radius mode, bench's load generator).

Importing this package imports only `constants` and `framing`: the PAM login imports what it uses, no more.
"""

from .constants import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    ACCESS_REQUEST,
    ACCOUNTING_REQUEST,
    ACCOUNTING_RESPONSE,
    MAX_PACKET,
    STATUS_SERVER,
)
from .framing import BAD_AUTHENTICATOR, MALFORMED, MISSING_MESSAGE_AUTHENTICATOR, NOT_A_REPLY, UNSUPPORTED_CODE, Drop

__all__ = [
    "ACCESS_ACCEPT",
    "ACCESS_CHALLENGE",
    "ACCESS_REJECT",
    "ACCESS_REQUEST",
    "ACCOUNTING_REQUEST",
    "ACCOUNTING_RESPONSE",
    "BAD_AUTHENTICATOR",
    "MALFORMED",
    "MAX_PACKET",
    "MISSING_MESSAGE_AUTHENTICATOR",
    "NOT_A_REPLY",
    "STATUS_SERVER",
    "UNSUPPORTED_CODE",
    "Drop",
]
