"""The packet layer, the client table and the duplicate cache, without a server."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os

import pytest

from otpcore.config import ClientConfig
from radiusd import wire
from radiusd.clients import ClientTable
from radiusd.dedup import IN_FLIGHT, ReplyCache

from .helpers import SECRET, build_request, check_reply, parse_reply, sign_request


def decode(raw: bytes, secret: bytes = SECRET, require: bool = True) -> wire.Request:
    return wire.decode_request(raw, secret, require_message_authenticator=require)


def dropped(raw: bytes, secret: bytes = SECRET, require: bool = True) -> str:
    with pytest.raises(wire.Drop) as info:
        decode(raw, secret, require)
    return info.value.reason


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
    assert dropped(sent.raw) == wire.MALFORMED


@pytest.mark.parametrize("size", [16, 32, 128])
def test_user_password_lengths_accepted(size: int) -> None:
    password = bytes(range(33, 33 + size))  # fills the hidden attribute exactly: no padding to strip
    sent = build_request("alice", password)
    assert [len(hidden) for hidden in parse_reply(sent.raw).get(2)] == [size]  # the User-Password attribute
    assert decode(sent.raw).password == password


def test_pap_encrypt_matches_pyrad() -> None:
    from pyrad.packet import AuthPacket

    auth = os.urandom(16)
    pkt = AuthPacket(secret=SECRET, authenticator=auth)
    for pw in (b"x", b"0123456789abcdef", b"0123456789abcdef0"):
        assert wire.pap_encrypt(pw, SECRET, auth) == pkt.PwCrypt(pw)


# -- Message-Authenticator and framing --------------------------------------------------------------------------------


@pytest.mark.parametrize("key_size", [0, 1, 10, 63, 64, 65, 200])
def test_hmac_md5_is_rfc_2104(key_size: int) -> None:
    key = os.urandom(key_size)
    for data in (b"", b"x", os.urandom(100), os.urandom(4096)):
        assert wire.hmac_md5(key, data) == hmac.digest(key, data, "md5")
        assert wire.hmac_md5(key, data) == hmac.digest(key, data, "md5")  # again, from the kept states


def test_long_reply_messages_are_split_and_kept_the_same() -> None:
    request = wire.decode_request(build_request("alice", b"123456").raw, SECRET,
                                  require_message_authenticator=True)
    message = "x" * 300
    for _ in range(2):
        reply = wire.encode_reply(wire.ACCESS_REJECT, request, SECRET, message=message)
        assert reply[20 + 18:20 + 18 + 2] == bytes((wire.REPLY_MESSAGE, 255))
        assert reply[20 + 18 + 255:20 + 18 + 255 + 2] == bytes((wire.REPLY_MESSAGE, 2 + 47))


def test_valid_message_authenticator() -> None:
    req = decode(build_request("alice", b"pw123456").raw)
    assert req.user == "alice" and req.code == wire.ACCESS_REQUEST


def test_tampered_packet_fails_the_message_authenticator() -> None:
    raw = bytearray(build_request("alice", b"pw123456").raw)
    raw[-1] ^= 1  # inside NAS-IP-Address
    assert dropped(bytes(raw)) == wire.BAD_AUTHENTICATOR


def test_wrong_secret_fails_the_message_authenticator() -> None:
    sent = build_request("alice", b"pw123456", secret=b"not-the-secret")
    assert dropped(sent.raw) == wire.BAD_AUTHENTICATOR


def test_missing_message_authenticator_when_required() -> None:
    sent = build_request("alice", b"pw123456", ma=False)
    assert dropped(sent.raw) == wire.MISSING_MESSAGE_AUTHENTICATOR
    assert decode(sent.raw, require=False).password == b"pw123456"


def test_proxy_state_without_message_authenticator_is_dropped_even_when_not_required() -> None:
    sent = build_request("alice", b"pw123456", ma=False, proxy_state=[b"proxy1"])
    assert dropped(sent.raw, require=False) == wire.MISSING_MESSAGE_AUTHENTICATOR


def test_proxy_states_that_leave_no_room_for_the_reply_are_malformed() -> None:
    """A reply echoes every Proxy-State; one that would pass 4096 octets could not be sent after the decision."""
    fits = build_request("alice", b"pw123456", proxy_state=[b"p" * 253] * 13)  # 3 315 octets of Proxy-State
    request = decode(fits.raw)
    assert len(wire.encode_reply(wire.ACCESS_CHALLENGE, request, SECRET, message="Enter your one-time password",
                                 state=os.urandom(16))) <= wire.MAX_PACKET
    full = build_request("alice", b"pw123456", proxy_state=[b"p" * 253] * 15)  # 3 825: the request itself fits
    assert len(full.raw) <= wire.MAX_PACKET
    assert dropped(full.raw) == wire.MALFORMED


def test_status_server_needs_a_message_authenticator() -> None:
    assert dropped(build_request(None, None, code=wire.STATUS_SERVER, ma=False).raw, require=False) == \
        wire.MISSING_MESSAGE_AUTHENTICATOR
    assert decode(build_request(None, None, code=wire.STATUS_SERVER).raw).code == wire.STATUS_SERVER


def test_two_message_authenticators_are_malformed() -> None:
    sent = build_request("alice", b"pw", extra=[(80, bytes(16))])
    assert dropped(sign_request(sent.raw, SECRET)) == wire.MALFORMED


def test_short_message_authenticator_is_malformed() -> None:
    sent = build_request("alice", b"pw", ma=False, extra=[(80, bytes(15))])
    assert dropped(sent.raw) == wire.MALFORMED


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
    if len(bad) > wire.MAX_PACKET:
        bad = bad[:2] + len(bad).to_bytes(2, "big")[-2:] + bad[4:]
    assert dropped(bad) == wire.MALFORMED


def test_padding_after_length_is_ignored() -> None:
    sent = build_request("alice", b"pw123456")
    assert decode(sent.raw + b"\x00garbage").password == b"pw123456"


def test_other_codes_are_unsupported() -> None:
    sent = build_request("alice", b"pw", code=4)
    assert dropped(sent.raw) == wire.UNSUPPORTED_CODE


def test_user_name_rules() -> None:
    assert dropped(build_request(None, b"pw").raw) == wire.MALFORMED
    assert dropped(build_request(b"\xff\xfe", b"pw").raw) == wire.MALFORMED
    assert dropped(build_request("a", b"pw", extra=[(1, b"b")]).raw) == wire.MALFORMED


def test_chap_is_flagged_and_pap_plus_chap_is_malformed() -> None:
    req = decode(build_request("alice", None, extra=[(3, os.urandom(17))]).raw)
    assert req.other_auth and req.password is None
    assert dropped(build_request("alice", b"pw", extra=[(3, os.urandom(17))]).raw) == wire.MALFORMED


def test_state_is_decoded() -> None:
    assert decode(build_request("alice", b"123456", state=b"S" * 16).raw).state == b"S" * 16
    assert dropped(build_request("alice", b"1", state=b"a", extra=[(24, b"b")]).raw) == wire.MALFORMED


def test_unknown_and_vendor_attributes_do_not_break_decoding() -> None:
    vsa = (9).to_bytes(4, "big") + bytes([1, 5]) + b"abc"
    req = decode(build_request("alice", b"pw123456", extra=[(26, vsa), (250, b"x"), (26, b"\x00")]).raw)
    assert req.password == b"pw123456"


# -- replies -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [wire.ACCESS_ACCEPT, wire.ACCESS_REJECT, wire.ACCESS_CHALLENGE])
def test_reply_is_signed_with_message_authenticator_first(code: int) -> None:
    sent = build_request("alice", b"pw", proxy_state=[b"first", b"second"])
    req = decode(sent.raw)
    raw = wire.encode_reply(code, req, SECRET, message="Hello", state=b"s" * 16 if code == 11 else None)
    reply = check_reply(sent, raw)
    assert reply.code == code
    assert reply.message == "Hello"
    assert reply.get(33) == [b"first", b"second"]


def test_long_reply_message_is_split() -> None:
    sent = build_request("alice", b"pw")
    raw = wire.encode_reply(wire.ACCESS_REJECT, decode(sent.raw), SECRET, message="é" * 200)
    reply = check_reply(sent, raw)
    assert len(reply.get(18)) == 2 and reply.message == "é" * 200


def test_status_server_reply_is_signed_with_the_request_authenticator() -> None:
    sent = build_request(None, None, code=wire.STATUS_SERVER, proxy_state=[b"p"])
    raw = wire.encode_reply(wire.ACCESS_ACCEPT, decode(sent.raw), SECRET)
    assert check_reply(sent, raw).code == wire.ACCESS_ACCEPT
    expected = hashlib.md5(raw[:4] + sent.authenticator + raw[20:] + SECRET).digest()
    assert hmac.compare_digest(expected, raw[4:20])


# -- client table ------------------------------------------------------------------------------------------------------


def _client(name: str, net: str) -> ClientConfig:
    return ClientConfig(name=name, network=ipaddress.ip_network(net), secret=name.encode())


def test_most_specific_client_wins() -> None:
    table = ClientTable([_client("wide", "10.0.0.0/8"), _client("host", "10.1.2.3/32"), _client("lan", "10.1.2.0/24"),
                         _client("v6", "2001:db8::/32"), _client("v6host", "2001:db8::1/128")])
    assert table.lookup("10.1.2.3").name == "host"  # type: ignore[union-attr]
    assert table.lookup("10.1.2.4").name == "lan"  # type: ignore[union-attr]
    assert table.lookup("10.9.9.9").name == "wide"  # type: ignore[union-attr]
    assert table.lookup("11.0.0.1") is None
    assert table.lookup("::ffff:10.1.2.3").name == "host"  # type: ignore[union-attr]
    assert table.lookup("2001:db8::1").name == "v6host"  # type: ignore[union-attr]
    assert table.lookup("2001:db8::2").name == "v6"  # type: ignore[union-attr]
    assert table.lookup("fe80::1%lo") is None
    assert table.lookup("not-an-address") is None


# -- duplicate cache ---------------------------------------------------------------------------------------------------


def test_reply_cache_in_flight_then_answered_then_expired() -> None:
    cache = ReplyCache(ttl=30)
    key = ("127.0.0.1", 5000, 7, b"a" * 16)
    assert cache.lookup(key, 100.0) is None
    cache.begin(key)
    assert cache.lookup(key, 100.0) is IN_FLIGHT
    cache.finish(key, b"reply", 101.0)
    assert cache.lookup(key, 130.9) == b"reply"
    assert cache.lookup(("127.0.0.1", 5001, 7, b"a" * 16), 102.0) is None  # another port is another request
    assert cache.lookup(key, 131.0) is None
    assert len(cache) == 0


def test_reply_cache_expire_and_abandon() -> None:
    cache = ReplyCache(ttl=30, max_entries=3)
    for i in range(5):
        cache.begin(("h", i, 0, b""))
        cache.finish(("h", i, 0, b""), b"r%d" % i, float(i))
    assert len(cache) == 3  # bounded: the oldest went first
    assert cache.expire(32.5) == 1
    assert cache.lookup(("h", 4, 0, b""), 33.0) == b"r4"
    key = ("h", 9, 0, b"")
    cache.begin(key)
    cache.abandon(key)
    assert cache.lookup(key, 40.0) is None and cache.in_flight == 0


@pytest.mark.parametrize(("code", "message", "state", "proxy"), [
    (wire.ACCESS_ACCEPT, "Welcome", None, []),
    (wire.ACCESS_REJECT, "", None, [b"p1", b"p2"]),
    (wire.ACCESS_CHALLENGE, "Enter your one-time password", b"s" * 16, [b"x" * 253]),
    (wire.ACCESS_REJECT, "é" * 300, None, []),
])
def test_reply_bytes_are_what_pyrad_encodes(code: int, message: str, state: bytes | None, proxy: list[bytes]) -> None:
    """encode_reply builds replies itself (the hot path); pyrad, given the same attributes, builds the same bytes."""
    from pyrad.packet import AuthPacket

    from radiusd.dictionary import load_dictionary

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
    assert wire.encode_reply(code, req, SECRET, message=message, state=state) == ref.ReplyPacket()
