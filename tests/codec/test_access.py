"""The server side of an Access-Request or Status-Server (otpbase.radius.access) and its replies
(otpbase.radius.replies): requests built by hand (tests/radius/helpers.py), replies checked by hand and by pyrad,
and the examples of RFC 2865 §7.1 and RFC 5997 §6.1."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from otpbase import radius
from otpbase.radius import access, replies
from otpbase.radius.constants import REPLY_MESSAGE
from otpbase.radius.pap import pap_hide
from tests.kit.radius_client import SECRET, Sent, build_request, check_reply, parse_reply, sign_request

RFC_SECRET = b"xyzzy5461"
# RFC 2865 §7.1: User-Name "nemo", User-Password "arctangent", NAS-IP-Address 192.168.1.16, NAS-Port 3; and the
# Access-Accept the RFC shows in reply (Service-Type, Login-Service, Login-IP-Host).
RFC2865_REQUEST = bytes.fromhex("010000380f403f9473978057bd83d5cb98f4227a01066e656d6f02120dbe708d93d413ce3196e43f782a"
                                "0aee0406c0a80110050600000003")
RFC2865_ACCEPT = bytes.fromhex("0200002686fe220e7624ba2a1005f6bf9b55e0b20606000000010f06000000000e06c0a80103")
# RFC 5997 §6.1: a Status-Server with its Message-Authenticator, and the Access-Accept in reply.
RFC5997_STATUS = bytes.fromhex("0cda00268a54f4686fb394c52866e302185d062350125a665e2e1e8411f3e243822097c84fa3")
RFC5997_ACCEPT = bytes.fromhex("02da0014ef0d552a4bf2d693ec2b6fe8b5411d66")


def decode(raw: bytes, secret: bytes = SECRET, require: bool = True) -> access.Request:
    return access.decode_request(raw, secret, require_message_authenticator=require)


def dropped(raw: bytes, secret: bytes = SECRET, require: bool = True) -> str:
    with pytest.raises(radius.Drop) as info:
        decode(raw, secret, require)
    return info.value.reason


# -- the RFC examples --------------------------------------------------------------------------------------------------


def test_rfc2865_access_request_is_decoded() -> None:
    request = decode(RFC2865_REQUEST, RFC_SECRET, require=False)
    assert (request.code, request.id, request.user, request.password) == (radius.ACCESS_REQUEST, 0, "nemo",
                                                                         b"arctangent")
    assert request.authenticator == RFC2865_REQUEST[4:20] and request.proxy_state == () and not request.other_auth
    assert dropped(RFC2865_REQUEST, RFC_SECRET) == radius.MISSING_MESSAGE_AUTHENTICATOR  # when the client must sign


def test_rfc5997_status_server_is_decoded_and_its_forgeries_dropped() -> None:
    request = decode(RFC5997_STATUS, RFC_SECRET)
    assert (request.code, request.id, request.authenticator) == (radius.STATUS_SERVER, 0xDA, RFC5997_STATUS[4:20])
    assert dropped(RFC5997_STATUS, b"xyzzy5462") == radius.BAD_AUTHENTICATOR
    forged = bytearray(RFC5997_STATUS)
    forged[4] ^= 1  # the Request Authenticator is signed by the Message-Authenticator
    assert dropped(bytes(forged), RFC_SECRET) == radius.BAD_AUTHENTICATOR


def test_reply_authenticators_are_those_of_the_rfc_examples() -> None:
    """The replies of the RFCs carry no Message-Authenticator (ours always do): the Response Authenticator is what
    can be compared, and the codec computes the RFC's."""
    from otpbase.radius.authenticators import packet_authenticator

    for request, reply in ((RFC2865_REQUEST, RFC2865_ACCEPT), (RFC5997_STATUS, RFC5997_ACCEPT)):
        assert packet_authenticator(reply[:4], request[4:20], reply[20:], RFC_SECRET) == reply[4:20]


def test_our_answer_to_the_rfc5997_status_server() -> None:
    raw = replies.encode_reply(radius.ACCESS_ACCEPT, decode(RFC5997_STATUS, RFC_SECRET), RFC_SECRET)
    assert raw[:2] == RFC5997_ACCEPT[:2] and len(raw) == 38  # Access-Accept, same ID, Message-Authenticator alone
    check_reply(Sent(RFC5997_STATUS, 0xDA, RFC5997_STATUS[4:20], RFC_SECRET), raw)


# -- PAP ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [b"", b"a", b"x" * 15, b"y" * 16, b"z" * 17, b"p" * 128, b"pass\xffword123456"])
def test_pap_round_trip_is_bytes_exact(password: bytes) -> None:
    sent = build_request("alice", password)
    assert decode(sent.raw).password == password


def test_invalid_utf8_is_kept_not_dropped() -> None:
    # pyrad's PwDecrypt would return "password" here, so a wrong password would match.
    sent = build_request("alice", b"pass\xffword")
    assert decode(sent.raw).password == b"pass\xffword"
    assert decode(sent.raw).password != b"password"


@pytest.mark.parametrize("size", [0, 1, 15, 17, 31, 144, 160])
def test_user_password_length_must_be_16_to_128_in_steps_of_16(size: int) -> None:
    sent = build_request("alice", None, extra=[(2, os.urandom(size))])
    assert dropped(sent.raw) == radius.MALFORMED


@pytest.mark.parametrize("size", [16, 32, 128])
def test_user_password_lengths_accepted(size: int) -> None:
    password = bytes(range(33, 33 + size))  # fills the hidden attribute exactly: no padding to strip
    sent = build_request("alice", password)
    assert [len(hidden) for hidden in parse_reply(sent.raw).get(2)] == [size]  # the User-Password attribute
    assert decode(sent.raw).password == password


def test_pap_hide_matches_pyrad() -> None:
    from pyrad.packet import AuthPacket

    auth = os.urandom(16)
    pkt = AuthPacket(secret=SECRET, authenticator=auth)
    for pw in (b"x", b"0123456789abcdef", b"0123456789abcdef0"):
        assert pap_hide(pw, SECRET, auth) == pkt.PwCrypt(pw)


# -- Message-Authenticator and framing --------------------------------------------------------------------------------


def test_long_reply_messages_are_split_and_kept_the_same() -> None:
    request = access.decode_request(build_request("alice", b"123456").raw, SECRET,
                                    require_message_authenticator=True)
    message = "x" * 300
    for _ in range(2):
        reply = replies.encode_reply(radius.ACCESS_REJECT, request, SECRET, message=message)
        assert reply[20 + 18:20 + 18 + 2] == bytes((REPLY_MESSAGE, 255))
        assert reply[20 + 18 + 255:20 + 18 + 255 + 2] == bytes((REPLY_MESSAGE, 2 + 47))


def test_valid_message_authenticator() -> None:
    req = decode(build_request("alice", b"pw123456").raw)
    assert req.user == "alice" and req.code == radius.ACCESS_REQUEST


def test_tampered_packet_fails_the_message_authenticator() -> None:
    raw = bytearray(build_request("alice", b"pw123456").raw)
    raw[-1] ^= 1  # inside NAS-IP-Address
    assert dropped(bytes(raw)) == radius.BAD_AUTHENTICATOR


def test_wrong_secret_fails_the_message_authenticator() -> None:
    sent = build_request("alice", b"pw123456", secret=b"not-the-secret")
    assert dropped(sent.raw) == radius.BAD_AUTHENTICATOR


def test_missing_message_authenticator_when_required() -> None:
    sent = build_request("alice", b"pw123456", ma=False)
    assert dropped(sent.raw) == radius.MISSING_MESSAGE_AUTHENTICATOR
    assert decode(sent.raw, require=False).password == b"pw123456"


def test_proxy_state_without_message_authenticator_is_dropped_even_when_not_required() -> None:
    sent = build_request("alice", b"pw123456", ma=False, proxy_state=[b"proxy1"])
    assert dropped(sent.raw, require=False) == radius.MISSING_MESSAGE_AUTHENTICATOR


def test_proxy_states_that_leave_no_room_for_the_reply_are_malformed() -> None:
    """A reply echoes every Proxy-State; one that would pass 4096 octets could not be sent after the decision."""
    fits = build_request("alice", b"pw123456", proxy_state=[b"p" * 253] * 13)  # 3 315 octets of Proxy-State
    request = decode(fits.raw)
    assert len(replies.encode_reply(radius.ACCESS_CHALLENGE, request, SECRET, message="Enter your one-time password",
                                 state=os.urandom(16))) <= radius.MAX_PACKET
    full = build_request("alice", b"pw123456", proxy_state=[b"p" * 253] * 15)  # 3 825: the request itself fits
    assert len(full.raw) <= radius.MAX_PACKET
    assert dropped(full.raw) == radius.MALFORMED


def test_status_server_needs_a_message_authenticator() -> None:
    assert dropped(build_request(None, None, code=radius.STATUS_SERVER, ma=False).raw, require=False) == \
        radius.MISSING_MESSAGE_AUTHENTICATOR
    assert decode(build_request(None, None, code=radius.STATUS_SERVER).raw).code == radius.STATUS_SERVER


def test_two_message_authenticators_are_malformed() -> None:
    sent = build_request("alice", b"pw", extra=[(80, bytes(16))])
    assert dropped(sign_request(sent.raw, SECRET)) == radius.MALFORMED


def test_short_message_authenticator_is_malformed() -> None:
    sent = build_request("alice", b"pw", ma=False, extra=[(80, bytes(15))])
    assert dropped(sent.raw) == radius.MALFORMED


@pytest.mark.parametrize("mutate", [
    lambda r: r[:19],  # shorter than a header
    lambda r: r[:2] + (len(r) + 1).to_bytes(2, "big") + r[4:],  # Length past the datagram
    lambda r: r[:2] + (19).to_bytes(2, "big") + r[4:],  # Length below the header
    lambda r: r[:2] + (len(r) - 1).to_bytes(2, "big") + r[4:len(r) - 1],  # last attribute overruns Length
    lambda r: r + bytes(4096),  # longer than 4096 with Length saying so
])
def test_framing_errors_are_malformed(mutate: object) -> None:
    raw = build_request("alice", b"pw").raw
    bad = mutate(raw)  # type: ignore[operator]
    if len(bad) > radius.MAX_PACKET:
        bad = bad[:2] + len(bad).to_bytes(2, "big")[-2:] + bad[4:]
    assert dropped(bad) == radius.MALFORMED


def test_padding_after_length_is_ignored() -> None:
    sent = build_request("alice", b"pw123456")
    assert decode(sent.raw + b"\x00garbage").password == b"pw123456"


def test_other_codes_are_unsupported() -> None:
    sent = build_request("alice", b"pw", code=4)
    assert dropped(sent.raw) == radius.UNSUPPORTED_CODE


def test_user_name_rules() -> None:
    assert dropped(build_request(None, b"pw").raw) == radius.MALFORMED
    assert dropped(build_request(b"\xff\xfe", b"pw").raw) == radius.MALFORMED
    assert dropped(build_request("a", b"pw", extra=[(1, b"b")]).raw) == radius.MALFORMED


def test_chap_is_a_proof_and_pap_plus_chap_is_malformed() -> None:
    sent = build_request("alice", None, extra=[(3, b"\x07" + bytes(16))])
    req = decode(sent.raw)
    assert not req.other_auth and req.password is None
    assert req.proof == (7, bytes(16), sent.raw[4:20])  # no CHAP-Challenge: the Request Authenticator is the challenge
    assert dropped(build_request("alice", b"pw", extra=[(3, os.urandom(17))]).raw) == radius.MALFORMED


def test_state_is_decoded() -> None:
    assert decode(build_request("alice", b"123456", state=b"S" * 16).raw).state == b"S" * 16
    assert dropped(build_request("alice", b"1", state=b"a", extra=[(24, b"b")]).raw) == radius.MALFORMED


def test_unknown_and_vendor_attributes_do_not_break_decoding() -> None:
    vsa = (9).to_bytes(4, "big") + bytes([1, 5]) + b"abc"
    req = decode(build_request("alice", b"pw123456", extra=[(26, vsa), (250, b"x"), (26, b"\x00")]).raw)
    assert req.password == b"pw123456"


# -- replies -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [radius.ACCESS_ACCEPT, radius.ACCESS_REJECT, radius.ACCESS_CHALLENGE])
def test_reply_is_signed_with_message_authenticator_first(code: int) -> None:
    sent = build_request("alice", b"pw", proxy_state=[b"first", b"second"])
    req = decode(sent.raw)
    raw = replies.encode_reply(code, req, SECRET, message="Hello", state=b"s" * 16 if code == 11 else None)
    reply = check_reply(sent, raw)
    assert reply.code == code
    assert reply.message == "Hello"
    assert reply.get(33) == [b"first", b"second"]


def test_long_reply_message_is_split() -> None:
    sent = build_request("alice", b"pw")
    raw = replies.encode_reply(radius.ACCESS_REJECT, decode(sent.raw), SECRET, message="é" * 200)
    reply = check_reply(sent, raw)
    assert len(reply.get(18)) == 2 and reply.message == "é" * 200


def test_status_server_reply_is_signed_with_the_request_authenticator() -> None:
    sent = build_request(None, None, code=radius.STATUS_SERVER, proxy_state=[b"p"])
    raw = replies.encode_reply(radius.ACCESS_ACCEPT, decode(sent.raw), SECRET)
    assert check_reply(sent, raw).code == radius.ACCESS_ACCEPT
    expected = hashlib.md5(raw[:4] + sent.authenticator + raw[20:] + SECRET).digest()
    assert hmac.compare_digest(expected, raw[4:20])


@pytest.mark.parametrize(("code", "message", "state", "proxy"), [
    (radius.ACCESS_ACCEPT, "Welcome", None, []),
    (radius.ACCESS_REJECT, "", None, [b"p1", b"p2"]),
    (radius.ACCESS_CHALLENGE, "Enter your one-time password", b"s" * 16, [b"x" * 253]),
    (radius.ACCESS_REJECT, "é" * 300, None, []),
])
def test_reply_bytes_are_what_pyrad_encodes(code: int, message: str, state: bytes | None, proxy: list[bytes]) -> None:
    """encode_reply builds replies itself (the hot path); pyrad, given the same attributes, builds the same bytes."""
    from pyrad.packet import AuthPacket

    from radiusd.dictionary import load_dictionary  # the dictionary shipped with the server

    req = decode(build_request("alice", b"pw", proxy_state=proxy).raw)
    ref = AuthPacket(code, req.id, SECRET, req.authenticator, dict=load_dictionary())
    ref.message_authenticator = True
    if message:
        data = message.encode()
        ref[18] = [data[i:i + 253] for i in range(0, len(data), 253)]
    if state is not None:
        ref[24] = [state]
    if proxy:
        ref[33] = proxy
    assert replies.encode_reply(code, req, SECRET, message=message, state=state) == ref.ReplyPacket()
