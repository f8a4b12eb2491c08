"""The codec over TLS: RADIUS/1.1 (RFC 9765), where nothing is MD5, and historic RadSec, where the TLS connection
authenticates the packet so a Message-Authenticator is checked but never required."""

from __future__ import annotations

import struct

import pytest

from otpbase import radius
from otpbase.radius import access, accounting, replies
from otpbase.radius.constants import (
    ACCT_SESSION_ID,
    ACCT_STATUS_TYPE,
    MESSAGE_AUTHENTICATOR,
    PROXY_STATE,
    STATE,
    USER_NAME,
    USER_PASSWORD,
)
from otpbase.radius.framing import stream_length
from tests.kit.radius_client import attributes, build_request
from tests.kit.radsec import radius11_request

TOKEN = b"\xde\xad\xbe\xef"


def v11(attrs: list[tuple[int, bytes]], code: int = radius.ACCESS_REQUEST) -> bytes:
    return radius11_request(code, TOKEN, attrs)


def decode11(raw: bytes) -> access.Request:
    return access.decode_request(raw, b"unused", require_message_authenticator=True, tls=True, radius11=True)


def test_the_password_is_sent_as_it_is_and_a_message_authenticator_ignored() -> None:
    raw = v11([(USER_NAME, b"alice"), (USER_PASSWORD, b"pw123456\x00"), (MESSAGE_AUTHENTICATOR, bytes(16))])
    request = decode11(raw)
    assert request.password == b"pw123456\x00"  # not padding: the password itself
    assert request.user == "alice" and request.radius11 and request.authenticator[:4] == TOKEN


@pytest.mark.parametrize("password", [b"", b"x" * 129])
def test_a_password_of_0_or_more_than_128_octets_is_malformed(password: bytes) -> None:
    with pytest.raises(radius.Drop) as info:
        decode11(v11([(USER_NAME, b"alice"), (USER_PASSWORD, password)]))
    assert info.value.reason == radius.MALFORMED


def test_the_reply_carries_the_token_and_no_md5() -> None:
    request = decode11(v11([(USER_NAME, b"a"), (USER_PASSWORD, b"1"), (PROXY_STATE, b"ps")]))
    raw = replies.encode_reply(radius.ACCESS_CHALLENGE, request, b"unused", message="Code?", state=b"st")
    assert raw[0] == radius.ACCESS_CHALLENGE and raw[1] == 0 and raw[4:8] == TOKEN and raw[8:20] == bytes(12)
    assert int.from_bytes(raw[2:4]) == len(raw)
    assert [kind for kind, _ in attributes(raw)] == [18, STATE, PROXY_STATE]  # no Message-Authenticator


def test_status_server_and_accounting() -> None:
    status = decode11(v11([], code=radius.STATUS_SERVER))
    assert replies.encode_reply(radius.ACCESS_ACCEPT, status, b"")[4:20] == TOKEN + bytes(12)
    raw = v11([(ACCT_STATUS_TYPE, struct.pack("!I", 1)), (ACCT_SESSION_ID, b"s1")], code=radius.ACCOUNTING_REQUEST)
    request = accounting.decode_accounting(raw, b"", tls=True, radius11=True)
    assert request.session_id == "s1" and request.radius11
    assert replies.encode_accounting_response(request, b"") == bytes((5, 0, 0, 20)) + TOKEN + bytes(12)


def test_historic_radsec_needs_no_message_authenticator_but_checks_one() -> None:
    plain = build_request("alice", b"pw", ma=False, secret=b"radsec", code=radius.ACCESS_REQUEST)
    request = access.decode_request(plain.raw, b"radsec", require_message_authenticator=True, tls=True)
    assert request.password == b"pw" and not request.radius11
    status = build_request(None, None, ma=False, secret=b"radsec", code=radius.STATUS_SERVER)
    assert access.decode_request(status.raw, b"radsec", require_message_authenticator=True, tls=True).code == 12
    wrong = build_request("alice", b"pw", secret=b"not radsec")
    with pytest.raises(radius.Drop) as info:
        access.decode_request(wrong.raw, b"radsec", require_message_authenticator=True, tls=True)
    assert info.value.reason == radius.BAD_AUTHENTICATOR


@pytest.mark.parametrize(("header", "length"), [(b"\x01\x00\x00\x14", 20), (b"\x01\x00\x10\x00", 4096)])
def test_stream_length(header: bytes, length: int) -> None:
    assert stream_length(header) == length


@pytest.mark.parametrize("header", [b"\x01\x00\x00\x13", b"\x01\x00\x10\x01", b"\x01\x00\x00\x00"])
def test_a_stream_length_out_of_bounds_is_malformed(header: bytes) -> None:
    with pytest.raises(radius.Drop) as info:
        stream_length(header)
    assert info.value.reason == radius.MALFORMED
