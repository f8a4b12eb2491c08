"""OpenVPN's static-challenge User-Password: SCRV1:<base64 password>:<base64 response>."""

from __future__ import annotations

import base64

import pytest

from radiusd.scrv1 import join_scrv1, parse_scrv1


def scrv1(password: bytes, response: bytes) -> bytes:
    return b"SCRV1:" + base64.b64encode(password) + b":" + base64.b64encode(response)


def test_parse_and_join() -> None:
    assert parse_scrv1(scrv1(b"s3cret", b"123456")) == (b"s3cret", b"123456")
    assert join_scrv1(scrv1(b"s3cret", b"123456")) == b"s3cret123456"


def test_bytes_survive() -> None:
    password = "pässwörd:with:colons".encode()
    assert join_scrv1(scrv1(password, b"987654")) == password + b"987654"


def test_blanks_around_the_response_are_dropped() -> None:
    assert join_scrv1(scrv1(b"pw", b" 123456\n")) == b"pw123456"


def test_empty_response_leaves_the_password_alone() -> None:
    """No code typed: the password alone, which the policy may answer with a challenge."""
    assert join_scrv1(scrv1(b"pw", b"")) == b"pw"


@pytest.mark.parametrize("value", [
    b"plain-password123456",
    b"SCRV1:",
    b"SCRV1:cHc=",
    b"SCRV1:cHc=:MTIz:extra",
    b"SCRV1:not base64!:MTIzNDU2",
    b"SCRV1:cHc=:MTIzNDU",  # bad padding
    b"scrv1:cHc=:MTIzNDU2",
])
def test_anything_else_is_a_password(value: bytes) -> None:
    assert parse_scrv1(value) is None
    assert join_scrv1(value) == value
