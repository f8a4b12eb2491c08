"""OpenVPN's static challenge (`static-challenge` in the client's config).

Such a client asks for the one-time password in a prompt of its own and sends the User-Password as
`SCRV1:<base64 password>:<base64 response>`. Joined, it is the `password + code` every other client sends.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["PREFIX", "join_scrv1", "parse_scrv1"]

PREFIX = b"SCRV1:"


def parse_scrv1(password: bytes) -> tuple[bytes, bytes] | None:
    """(password, response) from the SCRV1 form; None when `password` is not in that form (it is then a password)."""
    if not password.startswith(PREFIX):
        return None
    parts = password[len(PREFIX):].split(b":")
    if len(parts) != 2:
        return None
    try:
        secret, response = (base64.b64decode(part, validate=True) for part in parts)
    except (binascii.Error, ValueError):
        return None
    return secret, response.strip()  # a code typed with a trailing blank or newline is still the code


def join_scrv1(password: bytes) -> bytes:
    """password + response for the SCRV1 form, anything else unchanged."""
    parsed = parse_scrv1(password)
    return password if parsed is None else parsed[0] + parsed[1]
