"""The client side (otpbase.radius.client): the requests the PAM module and bench send, and the check of the replies
they take, against the server side of the codec, pyrad and the RFC 5997 §6 examples."""

from __future__ import annotations

import os

import pyrad.packet
import pytest

from otpbase.radius import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    ACCESS_REQUEST,
    ACCOUNTING_RESPONSE,
    BAD_AUTHENTICATOR,
    MALFORMED,
    MISSING_MESSAGE_AUTHENTICATOR,
    NOT_A_REPLY,
    STATUS_SERVER,
    Drop,
)
from otpbase.radius.access import decode_request
from otpbase.radius.accounting import decode_accounting
from otpbase.radius.client import Reply, access_request, decode_reply, encode_request, status_server
from otpbase.radius.constants import MESSAGE_AUTHENTICATOR, NAS_IDENTIFIER, NAS_IP_ADDRESS, STATE, USER_NAME
from otpbase.radius.replies import encode_accounting_response, encode_reply
from radiusd.dictionary import load_dictionary

SECRET = b"client-secret"
RFC_SECRET = b"xyzzy5461"
RFC5997_STATUS = bytes.fromhex("0cda00268a54f4686fb394c52866e302185d062350125a665e2e1e8411f3e243822097c84fa3")
RFC5997_ACCT_STATUS = bytes.fromhex("0cb30026925f6b66dd5fed571fcb1db7ad3882605012e8d6eabda910875cd91fdade26367858")
RFC2865_REQUEST = bytes.fromhex("010000380f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d93d413ce3196e43f782a"
                                "0aee0406c0a80110050600000003")
RFC2865_ACCEPT = bytes.fromhex("0200002686fe220e7624ba2a1005f6bf9b55e0b20606000000010f06000000000e06c0a80103")


def reply_or_drop(data: bytes, request: bytes, secret: bytes = SECRET, **options: object) -> Reply | str:
    try:
        return decode_reply(data, request, secret, **options)  # type: ignore[arg-type]
    except Drop as drop:
        return drop.reason


# -- requests ----------------------------------------------------------------------------------------------------------


def test_status_server_is_the_rfc_5997_example_byte_for_byte() -> None:
    assert status_server(0xDA, RFC5997_STATUS[4:20], RFC_SECRET) == RFC5997_STATUS
    assert status_server(0xB3, RFC5997_ACCT_STATUS[4:20], RFC_SECRET) == RFC5997_ACCT_STATUS


def test_access_request_round_trips_through_the_server_decoder() -> None:
    authenticator = os.urandom(16)
    raw = access_request(300, authenticator, SECRET, user="alice", password=b"pw\xff123456",
                         attributes=[(NAS_IP_ADDRESS, bytes((127, 0, 0, 1))), (STATE, b"S" * 16)])
    assert raw[1] == 300 & 0xFF and raw[20:22] == bytes((MESSAGE_AUTHENTICATOR, 18))  # signed first
    request = decode_request(raw, SECRET, require_message_authenticator=True)
    assert (request.code, request.id, request.user, request.password, request.state) == \
        (ACCESS_REQUEST, 44, "alice", b"pw\xff123456", b"S" * 16)
    assert request.authenticator == authenticator


def test_pyrad_verifies_the_requests_message_authenticator() -> None:
    raw = access_request(7, os.urandom(16), SECRET, user="alice", password=b"123456",
                         attributes=[(NAS_IDENTIFIER, b"sshd")])
    reference = pyrad.packet.AuthPacket(packet=raw, secret=SECRET, dict=load_dictionary())
    assert reference.verify_message_authenticator()
    assert reference["User-Name"] == ["alice"] and reference["NAS-Identifier"] == ["sshd"]


@pytest.mark.parametrize("attributes", [[(STATE, b"")], [(STATE, b"s" * 254)], [(26, b"v" * 253)] * 16],
                         ids=["empty", "254-octets", "over-4096"])
def test_values_or_requests_that_do_not_fit_are_refused(attributes: list[tuple[int, bytes]]) -> None:
    with pytest.raises(ValueError):
        encode_request(ACCESS_REQUEST, 1, bytes(16), SECRET, attributes)


def test_a_user_name_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="attribute 1"):
        access_request(1, bytes(16), SECRET, user="", password=b"x")


# -- replies -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE])
def test_a_reply_round_trips(code: int) -> None:
    raw = access_request(9, os.urandom(16), SECRET, user="alice", password=b"pw")
    request = decode_request(raw, SECRET, require_message_authenticator=True)
    message = "é" * 200  # two Reply-Message attributes, an "é" split across them
    reply = reply_or_drop(encode_reply(code, request, SECRET, message=message, state=b"st"), raw)
    assert isinstance(reply, Reply)
    assert (reply.code, reply.message, reply.state) == (code, message, b"st")


def test_replies_that_are_not_the_answer_are_dropped_with_their_reason() -> None:
    raw = access_request(9, os.urandom(16), SECRET, user="alice", password=b"pw")
    request = decode_request(raw, SECRET, require_message_authenticator=True)
    good = encode_reply(ACCESS_ACCEPT, request, SECRET)
    assert isinstance(reply_or_drop(good, raw), Reply)
    assert reply_or_drop(good, raw, b"other") == BAD_AUTHENTICATOR
    assert reply_or_drop(good[:1] + bytes((10,)) + good[2:], raw) == NOT_A_REPLY  # another Identifier
    assert reply_or_drop(bytes((ACCOUNTING_RESPONSE,)) + good[1:], raw) == NOT_A_REPLY  # another code
    assert reply_or_drop(good[:25], raw) == MALFORMED
    forged = bytearray(good)
    forged[30] ^= 1  # inside the Message-Authenticator, Response Authenticator left as it was
    assert reply_or_drop(bytes(forged), raw) == BAD_AUTHENTICATOR


def test_a_reply_without_message_authenticator_is_dropped_unless_allowed() -> None:
    """RFC 2865 §7.1: the example's Access-Accept is authentic but unsigned (BlastRADIUS: not taken by default)."""
    assert reply_or_drop(RFC2865_ACCEPT, RFC2865_REQUEST, RFC_SECRET) == MISSING_MESSAGE_AUTHENTICATOR
    reply = reply_or_drop(RFC2865_ACCEPT, RFC2865_REQUEST, RFC_SECRET, require_message_authenticator=False)
    assert isinstance(reply, Reply) and (reply.code, reply.message, reply.state) == (ACCESS_ACCEPT, "", None)


def test_our_answers_to_the_rfc_5997_status_servers() -> None:
    access = decode_request(RFC5997_STATUS, RFC_SECRET, require_message_authenticator=True)
    assert access.code == STATUS_SERVER
    answer = reply_or_drop(encode_reply(ACCESS_ACCEPT, access, RFC_SECRET), RFC5997_STATUS, RFC_SECRET)
    assert isinstance(answer, Reply) and answer.code == ACCESS_ACCEPT
    accounting = decode_accounting(RFC5997_ACCT_STATUS, RFC_SECRET)
    assert (accounting.code, accounting.id, accounting.status_name) == (STATUS_SERVER, 0xB3, "status-server")
    response = encode_accounting_response(accounting, RFC_SECRET)
    answer = reply_or_drop(response, RFC5997_ACCT_STATUS, RFC_SECRET, codes=frozenset((ACCOUNTING_RESPONSE,)))
    assert isinstance(answer, Reply) and answer.code == ACCOUNTING_RESPONSE


def test_user_name_is_not_taken_from_a_reply() -> None:
    """A reply's attributes other than Reply-Message and State are skipped (and so cannot confuse the client)."""
    raw = access_request(9, os.urandom(16), SECRET, user="alice", password=b"pw")
    unsigned_reply = encode_request(ACCESS_ACCEPT, 9, raw[4:20], SECRET, [(USER_NAME, b"mallory")])
    # encode_request signs with the vector given; as a reply it also needs its Response Authenticator:
    from otpbase.radius.authenticators import packet_authenticator

    signed = unsigned_reply[:4] + packet_authenticator(unsigned_reply[:4], raw[4:20], unsigned_reply[20:], SECRET) + \
        unsigned_reply[20:]
    reply = reply_or_drop(signed, raw)
    assert isinstance(reply, Reply) and (reply.message, reply.state) == ("", None)
