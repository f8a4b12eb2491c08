"""Challenge-response attributes (otpbase.radius.chap): CHAP-Password / CHAP-Challenge and Microsoft's vendor
attributes in requests built by hand, and the MS-CHAP answers of a reply, their hidden keys opened by pyrad's own
decryption (RFC 2548's salt encryption is RFC 2868's) and by a User-Password unhiding."""

from __future__ import annotations

import os

import pytest
from pyrad import packet as rpacket

from otpbase import radius
from otpbase.radius import access
from otpbase.radius.chap import (
    MICROSOFT,
    ChapProof,
    MsChap2Proof,
    MsChapProof,
    mschap2_accept,
    mschap_accept,
    mschap_error,
    vendor_attributes,
)
from otpbase.radius.pap import pap_unhide
from tests.kit.radius_client import SECRET, build_request

MS = MICROSOFT.to_bytes(4, "big")


def vsa(number: int, value: bytes, vendor: bytes = MS) -> tuple[int, bytes]:
    return 26, vendor + bytes((number, len(value) + 2)) + value


def decode(*extra: tuple[int, bytes], password: bytes | None = None) -> access.Request:
    sent = build_request("alice", password, extra=list(extra))
    return access.decode_request(sent.raw, SECRET, require_message_authenticator=True)


def dropped(*extra: tuple[int, bytes], password: bytes | None = None) -> str:
    with pytest.raises(radius.Drop) as info:
        decode(*extra, password=password)
    return info.value.reason


def test_chap_with_its_challenge() -> None:
    request = decode((3, b"\x09" + b"R" * 16), (60, b"C" * 16))
    assert request.proof == ChapProof(9, b"R" * 16, b"C" * 16) and not request.other_auth


def test_chap_sizes_and_pap_together_are_malformed() -> None:
    assert dropped((3, b"\x09" + b"R" * 15)) == radius.MALFORMED
    assert dropped((3, b"\x09" + b"R" * 16), (60, b"")) == radius.MALFORMED
    assert dropped((3, b"\x09" + b"R" * 16), password=b"123456") == radius.MALFORMED


def test_mschapv2_response() -> None:
    response = b"\x2c\x00" + b"P" * 16 + bytes(8) + b"N" * 24
    request = decode(vsa(11, b"A" * 16), vsa(25, response))
    assert request.proof == MsChap2Proof(0x2C, b"A" * 16, b"P" * 16, b"N" * 24) and request.password is None


def test_mschap_v1_response_and_its_lan_manager_only_form() -> None:
    request = decode(vsa(11, b"c" * 8), vsa(1, b"\x05\x01" + b"L" * 24 + b"N" * 24))
    assert request.proof == MsChapProof(5, b"c" * 8, b"N" * 24)
    lm_only = decode(vsa(11, b"c" * 8), vsa(1, b"\x05\x00" + b"L" * 24 + b"N" * 24))
    assert lm_only.proof is None and lm_only.other_auth  # refused as unsupported, not dropped


def test_mschap_pieces_missing_or_wrong() -> None:
    alone = decode(vsa(25, bytes(50)))  # a response without its challenge proves nothing we can check
    assert alone.proof is None and alone.other_auth
    assert decode(vsa(11, b"A" * 16)).other_auth  # a challenge without a response
    assert dropped(vsa(11, b"A" * 8), vsa(25, bytes(50))) == radius.MALFORMED  # v2 takes a 16-octet challenge
    assert dropped(vsa(11, b"A" * 16), vsa(25, bytes(49))) == radius.MALFORMED
    assert dropped(vsa(11, b"A" * 16), vsa(25, bytes(50)), (3, bytes(17))) == radius.MALFORMED  # two methods
    assert dropped(vsa(11, b"A" * 16), vsa(25, bytes(50)), password=b"123456") == radius.MALFORMED


def test_other_vendors_are_skipped_and_ours_must_add_up() -> None:
    request = decode(vsa(11, b"A" * 16, vendor=(9).to_bytes(4, "big")), password=b"123456")
    assert request.password == b"123456" and request.proof is None and not request.other_auth
    assert dropped((26, MS + bytes((11, 40)) + b"x")) == radius.MALFORMED
    assert dropped((26, MS)) == radius.MALFORMED
    assert vendor_attributes([MS + bytes((7, 6)) + bytes(4) + bytes((8, 3, 1))]) == {7: [bytes(4)], 8: [b"\x01"]}


def reply_vsas(extra: bytes) -> dict[int, list[bytes]]:
    values, pos = [], 0
    while pos < len(extra):
        assert extra[pos] == 26
        values.append(extra[pos + 2:pos + extra[pos + 1]])
        pos += extra[pos + 1]
    return vendor_attributes(values)


def test_mschapv2_accept_keys_open_with_pyrad() -> None:
    authenticator = os.urandom(16)
    send, recv = os.urandom(16), os.urandom(16)
    found = reply_vsas(mschap2_accept(0x2C, b"S=" + b"A" * 40, send, recv, SECRET, authenticator))
    assert found[26] == [b"\x2cS=" + b"A" * 40]
    packet = rpacket.AuthPacket(secret=SECRET, authenticator=authenticator)
    assert packet.SaltDecrypt(found[16][0]) == send and packet.SaltDecrypt(found[17][0]) == recv
    assert found[16][0][0] & 0x80 and found[16][0][:2] != found[17][0][:2]  # salts: high bit set, different
    assert len(found[16][0]) == 2 + 32
    assert found[7] == [(1).to_bytes(4, "big")] and found[8] == [(6).to_bytes(4, "big")]


def test_mschap_accept_and_error() -> None:
    authenticator = os.urandom(16)
    keys = bytes(8) + os.urandom(16)
    found = reply_vsas(mschap_accept(keys, SECRET, authenticator))
    assert len(found[12][0]) == 32  # padded to 16-octet blocks, hidden as a User-Password is
    assert pap_unhide(found[12][0], SECRET, authenticator) == keys.rstrip(b"\0")  # unhiding drops the padding
    assert reply_vsas(mschap_error(7))[2] == [b"\x07E=691 R=0 V=3"]
