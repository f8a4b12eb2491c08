"""The codec's building blocks: HMAC-MD5 (RFC 2104/2202 vectors), PAP hiding (RFC 2865 §7.1), the authenticators
(RFC 5997 §6.1), and the framing checks with the reason each malformed input is dropped for."""

from __future__ import annotations

import hmac
import os

import pytest

from otpbase.radius import MALFORMED, Drop
from otpbase.radius import authenticators as auth
from otpbase.radius.constants import MAX_PACKET, MESSAGE_AUTHENTICATOR, PROXY_STATE, STATE, USER_NAME
from otpbase.radius.framing import REPLY_ROOM, attribute, echoed_proxy_states, framed, scan
from otpbase.radius.pap import pap_hide, pap_unhide

RFC_SECRET = b"xyzzy5461"
RFC2865_AUTHENTICATOR = bytes.fromhex("0f403f9473978057bd83d5cb98f4227a")
RFC2865_HIDDEN = bytes.fromhex("0dbe708d93d413ce3196e43f782a0aee")  # "arctangent", RFC 2865 §7.1
RFC5997_STATUS = bytes.fromhex("0cda00268a54f4686fb394c52866e302185d062350125a665e2e1e8411f3e243822097c84fa3")


def dropped(call, *args) -> str:
    with pytest.raises(Drop) as info:
        call(*args)
    return info.value.reason


# -- HMAC-MD5 ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "data", "digest"), [
    (b"\x0b" * 16, b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
    (b"Jefe", b"what do ya want for nothing?", "750c783e6ab0b503eaa86e310a5db738"),
    (b"\xaa" * 16, b"\xdd" * 50, "56be34521d144c88dbb8c733f0e8b3f6"),
    (b"\xaa" * 80, b"Test Using Larger Than Block-Size Key - Hash Key First", "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"),
], ids=["rfc2202-1", "rfc2202-2", "rfc2202-3", "rfc2202-6"])
def test_hmac_md5_rfc_2202_vectors(key: bytes, data: bytes, digest: str) -> None:
    assert auth.hmac_md5(key, data).hex() == digest
    assert auth.hmac_md5(key, data).hex() == digest  # again, from the kept states


@pytest.mark.parametrize("key_size", [0, 1, 10, 63, 64, 65, 200])
def test_hmac_md5_is_rfc_2104(key_size: int) -> None:
    key = os.urandom(key_size)
    for data in (b"", b"x", os.urandom(100), os.urandom(4096)):
        assert auth.hmac_md5(key, data) == hmac.digest(key, data, "md5")
        assert auth.hmac_md5(key, data) == hmac.digest(key, data, "md5")  # again, from the kept states


def test_hmac_md5_kept_states_are_bounded_and_stay_right() -> None:
    keys = [b"key-%d" % n for n in range(1500)]
    for key in keys:
        assert auth.hmac_md5(key, b"data") == hmac.digest(key, b"data", "md5")
    assert len(auth._PADS) <= 1024
    assert all(auth.hmac_md5(key, b"more") == hmac.digest(key, b"more", "md5") for key in keys[::97])


# -- PAP ---------------------------------------------------------------------------------------------------------------


def test_pap_rfc_2865_vector() -> None:
    assert pap_hide(b"arctangent", RFC_SECRET, RFC2865_AUTHENTICATOR) == RFC2865_HIDDEN
    assert pap_unhide(RFC2865_HIDDEN, RFC_SECRET, RFC2865_AUTHENTICATOR) == b"arctangent"


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 33, 127, 128])
def test_pap_round_trip(size: int) -> None:
    password = os.urandom(size).replace(b"\0", b"\1")
    authenticator = os.urandom(16)
    hidden = pap_hide(password, b"s3cret", authenticator)
    assert len(hidden) == max(16, -(-size // 16) * 16)
    assert pap_unhide(hidden, b"s3cret", authenticator) == password
    assert pap_unhide(hidden, b"s3cret!", authenticator) != password


def test_pap_unhide_removes_only_the_trailing_padding() -> None:
    authenticator = os.urandom(16)
    for password in (b"a\0b", b"\0ab", b"pass\xffword", "é".encode()):
        assert pap_unhide(pap_hide(password, b"k", authenticator), b"k", authenticator) == password


def test_pap_hide_refuses_more_than_128_octets_unless_told() -> None:
    with pytest.raises(ValueError, match="at most 128"):
        pap_hide(b"x" * 129, b"k", bytes(16))
    hidden = pap_hide(b"x" * 200, b"k", bytes(16), limit=None)  # for fuzzers: the server must refuse it
    assert len(hidden) == 208 and pap_unhide(hidden, b"k", bytes(16)) == b"x" * 200


# -- authenticators ----------------------------------------------------------------------------------------------------


def test_message_authenticator_rfc_5997_vector() -> None:
    assert auth.message_authenticator_ok(RFC5997_STATUS, 20, RFC_SECRET)
    assert auth.message_authenticator_ok(RFC5997_STATUS, 20, RFC_SECRET, RFC5997_STATUS[4:20])  # the same vector
    assert not auth.message_authenticator_ok(RFC5997_STATUS, 20, b"xyzzy5462")
    assert not auth.message_authenticator_ok(RFC5997_STATUS, 20, RFC_SECRET, bytes(16))
    assert auth.signed(RFC5997_STATUS[:4], RFC5997_STATUS[4:20], auth.MA_PLACEHOLDER, RFC_SECRET) == \
        RFC5997_STATUS[20:]


def test_every_octet_is_covered_by_the_message_authenticator() -> None:
    for i in (*range(0, 22), *range(38, len(RFC5997_STATUS))):
        if 2 <= i < 4:
            continue  # the Length: a changed one is a framing error first
        changed = bytearray(RFC5997_STATUS)
        changed[i] ^= 0x40
        assert not auth.message_authenticator_ok(bytes(changed), 20, RFC_SECRET), i


def test_accounting_request_authenticator_is_the_packet_authenticator_over_zeros() -> None:
    packet = bytes((4, 1, 0, 26)) + os.urandom(16) + attribute(USER_NAME, b"nemo")
    expected = auth.packet_authenticator(packet[:4], auth.ZERO16, packet[20:], RFC_SECRET)
    assert auth.accounting_request_authenticator(packet, RFC_SECRET) == expected
    signed = packet[:4] + expected + packet[20:]
    assert auth.authenticator_ok(signed, auth.ZERO16, RFC_SECRET)
    assert not auth.authenticator_ok(signed, auth.ZERO16, b"other")


# -- framing -----------------------------------------------------------------------------------------------------------


def packet(*attributes: bytes, length: int | None = None, code: int = 1) -> bytes:
    body = b"".join(attributes)
    size = 20 + len(body) if length is None else length
    return bytes((code, 0, size >> 8, size & 0xFF)) + bytes(16) + body


@pytest.mark.parametrize("data", [
    b"",
    bytes(19),
    packet(length=19),  # Length below the header
    packet(attribute(USER_NAME, b"x"), length=24),  # Length past the datagram
    packet(attribute(USER_NAME, b"x" * 200) * 21, length=4097)[:4097],  # past RFC 2865's maximum
], ids=["empty", "short", "length-below-header", "length-past-datagram", "over-4096"])
def test_framing_errors_are_malformed(data: bytes) -> None:
    assert dropped(framed, data) == MALFORMED


def test_octets_past_length_are_padding() -> None:
    whole = packet(attribute(USER_NAME, b"nemo"))
    assert framed(whole + b"\0garbage") == whole
    assert framed(whole) is whole  # no copy on the hot path


@pytest.mark.parametrize("body", [
    bytes((USER_NAME,)),  # one octet left: no room for a Length
    bytes((USER_NAME, 0)),  # Length 0
    bytes((USER_NAME, 1)),  # Length 1
    bytes((USER_NAME, 9)) + b"nemo",  # runs past the packet
    attribute(MESSAGE_AUTHENTICATOR, bytes(15)),  # not 16 octets
    attribute(MESSAGE_AUTHENTICATOR, bytes(16)) * 2,  # twice
], ids=["no-length", "length-0", "length-1", "overrun", "short-ma", "two-ma"])
def test_attribute_framing_errors_are_malformed(body: bytes) -> None:
    assert dropped(scan, packet(body)) == MALFORMED


def test_scan_keeps_what_is_wanted_in_order_and_finds_the_message_authenticator() -> None:
    data = packet(attribute(STATE, b"s1"), attribute(USER_NAME, b"nemo"), attribute(MESSAGE_AUTHENTICATOR, bytes(16)),
                  attribute(STATE, b""), attribute(26, b"vendor"))
    ma_offset, found = scan(data, frozenset((STATE,)))
    assert ma_offset == 20 + 4 + 6
    assert found == {STATE: [b"s1", b""]}
    assert scan(data)[1] == {STATE: [b"s1", b""], USER_NAME: [b"nemo"], 26: [b"vendor"]}
    assert scan(packet()) == (0, {})


def test_attribute_values_are_at_most_253_octets() -> None:
    assert attribute(STATE, b"") == bytes((STATE, 2))
    assert attribute(STATE, b"s" * 253)[:2] == bytes((STATE, 255))
    with pytest.raises(ValueError, match="longer than 253"):
        attribute(STATE, b"s" * 254)


def test_echoed_proxy_states_must_leave_room_for_the_reply() -> None:
    room = MAX_PACKET - REPLY_ROOM
    fits = [b"p" * 253] * (room // 255) + [b"q" * (room % 255 - 2)]
    assert sum(len(v) + 2 for v in fits) == room
    assert echoed_proxy_states({PROXY_STATE: fits}) == tuple(fits)
    assert dropped(echoed_proxy_states, {PROXY_STATE: [*fits, b""]}) == MALFORMED
    assert echoed_proxy_states({}) == ()
