"""The PAM module's RADIUS client: its packets cross-checked with pyrad, the replies it takes (the codec's check),
retransmission, failover."""

from __future__ import annotations

import os
import time

import pyrad.packet
import pytest

from otpbase.radius import BAD_AUTHENTICATOR, MALFORMED, MISSING_MESSAGE_AUTHENTICATOR, NOT_A_REPLY, Drop
from otpbase.radius.client import Reply, decode_reply
from otpbase.radius.constants import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    MESSAGE_AUTHENTICATOR,
    NAS_IDENTIFIER,
    REPLY_MESSAGE,
    STATE,
    USER_NAME,
    USER_PASSWORD,
)
from pam_module.radius_client import RadiusClient, RadiusError, RadiusUnavailable, build_access_request
from radiusd.dictionary import load_dictionary
from tests.kit.ports import free_udp_port
from tests.kit.radius_client import attributes

from .pamkit import make_reply

SECRET = b"testing123"


def reply_or_drop(data: bytes, request: bytes, secret: bytes) -> Reply | str:
    """The reply the client would take, or the reason it ignores the packet."""
    try:
        return decode_reply(data, request, secret)
    except Drop as drop:
        return drop.reason


@pytest.mark.parametrize("password", [b"", b"123456", b"x" * 16, b"secret123456" * 2, b"pw!" * 42 + b"12"])
def test_password_hiding_matches_pyrad(password):
    auth = os.urandom(16)
    packet = build_access_request(1, auth, SECRET, user="u", password=password, nas_identifier="n")
    hidden = dict(attributes(packet))[USER_PASSWORD]
    assert len(hidden) % 16 == 0 and len(hidden) >= 16
    reference = pyrad.packet.AuthPacket(secret=SECRET, authenticator=auth)
    assert reference.PwDecrypt(hidden) == password.decode("latin-1")
    if password:
        assert reference.PwCrypt(password) == hidden


@pytest.mark.parametrize(("field", "value"), [("password", b"x" * 129), ("user", "u" * 254), ("user", ""),
                                              ("nas_identifier", "")])
def test_a_value_that_does_not_fit_its_attribute_is_refused(field, value):
    values = {"user": "alice", "password": b"123456", "nas_identifier": "sshd", field: value}
    with pytest.raises(RadiusError):
        build_access_request(1, os.urandom(16), SECRET, **values)


def test_access_request_layout_and_message_authenticator():
    auth = os.urandom(16)
    packet = build_access_request(42, auth, SECRET, user="alice", password=b"123456", nas_identifier="sshd",
                                  state=b"st4te", calling_station="192.0.2.7")
    assert packet[0] == 1 and packet[1] == 42 and int.from_bytes(packet[2:4], "big") == len(packet)
    attrs = attributes(packet)
    assert attrs[0][0] == MESSAGE_AUTHENTICATOR  # first, as the server's own replies
    found = dict(attrs)
    assert found[USER_NAME] == b"alice" and found[NAS_IDENTIFIER] == b"sshd" and found[STATE] == b"st4te"
    assert found[31] == b"192.0.2.7"
    assert pyrad.packet.AuthPacket(secret=SECRET, authenticator=auth).PwDecrypt(found[USER_PASSWORD]) == "123456"
    reference = pyrad.packet.AuthPacket(packet=packet, secret=SECRET, dict=load_dictionary())
    assert reference.verify_message_authenticator()


def test_reply_checks():
    request = build_access_request(7, os.urandom(16), SECRET, user="u", password=b"p", nas_identifier="n")
    good = make_reply(request, ACCESS_CHALLENGE, SECRET, [(REPLY_MESSAGE, b"Enter "), (REPLY_MESSAGE, b"code"),
                                                           (STATE, b"abc")])
    reply = reply_or_drop(good, request, SECRET)
    assert isinstance(reply, Reply) and reply.code == ACCESS_CHALLENGE and reply.message == "Enter code"
    assert reply.state == b"abc"
    assert reply_or_drop(good, request, b"other") == BAD_AUTHENTICATOR
    assert reply_or_drop(make_reply(request, ACCESS_ACCEPT, SECRET, break_authenticator=True), request,
                         SECRET) == BAD_AUTHENTICATOR
    assert reply_or_drop(make_reply(request, ACCESS_ACCEPT, SECRET, break_mac=True), request, SECRET) == \
        BAD_AUTHENTICATOR
    assert reply_or_drop(make_reply(request, ACCESS_ACCEPT, SECRET, message_authenticator=False), request,
                         SECRET) == MISSING_MESSAGE_AUTHENTICATOR
    assert reply_or_drop(make_reply(request, ACCESS_ACCEPT, SECRET, ident=8), request, SECRET) == NOT_A_REPLY
    assert reply_or_drop(make_reply(request, 4, SECRET), request, SECRET) == NOT_A_REPLY  # not an access reply
    assert reply_or_drop(good[:30], request, SECRET) == MALFORMED  # truncated
    assert isinstance(reply_or_drop(good + b"padding", request, SECRET), Reply)  # bytes past Length are ignored


@pytest.mark.parametrize("code", [ACCESS_ACCEPT, ACCESS_REJECT])
def test_authenticate_returns_the_answer(scripted_server, code):
    srv = scripted_server(lambda req: [make_reply(req, code, SECRET)])
    client = RadiusClient([("127.0.0.1", srv.port)], SECRET, timeout=2)
    assert client.authenticate("alice", b"123456").code == code


def test_forged_replies_are_ignored_until_the_real_one(scripted_server):
    def handler(req):
        return [make_reply(req, ACCESS_ACCEPT, SECRET, break_authenticator=True),
                make_reply(req, ACCESS_ACCEPT, b"wrong-secret"),
                make_reply(req, ACCESS_ACCEPT, SECRET, break_mac=True),
                make_reply(req, ACCESS_REJECT, SECRET)]
    srv = scripted_server(handler)
    assert RadiusClient([("127.0.0.1", srv.port)], SECRET, timeout=2).authenticate("a", b"1").code == ACCESS_REJECT


def test_retransmission_is_the_same_packet(scripted_server):
    def handler(req):
        return [] if len(srv.requests) == 1 else [make_reply(req, ACCESS_ACCEPT, SECRET)]
    srv = scripted_server(handler)
    client = RadiusClient([("127.0.0.1", srv.port)], SECRET, timeout=0.3, retries=1)
    assert client.authenticate("alice", b"123456").code == ACCESS_ACCEPT
    assert len(srv.requests) == 2 and srv.requests[0] == srv.requests[1]


def test_failover_on_timeout(scripted_server):
    silent = scripted_server(lambda req: [])
    live = scripted_server(lambda req: [make_reply(req, ACCESS_ACCEPT, SECRET)])
    client = RadiusClient([("127.0.0.1", silent.port), ("127.0.0.1", live.port)], SECRET, timeout=0.3, retries=1)
    start = time.monotonic()
    reply = client.authenticate("alice", b"123456")
    assert reply.code == ACCESS_ACCEPT and reply.server == ("127.0.0.1", live.port)
    assert 0.5 <= time.monotonic() - start < 3
    assert len(silent.requests) == 2
    assert silent.requests[0][4:20] != live.requests[0][4:20]  # a fresh packet for the next server
    assert client.failures == [f"127.0.0.1:{silent.port}: no valid answer"]


def test_failover_on_port_unreachable_is_immediate(scripted_server):
    live = scripted_server(lambda req: [make_reply(req, ACCESS_ACCEPT, SECRET)])
    client = RadiusClient([("127.0.0.1", free_udp_port()), ("127.0.0.1", live.port)], SECRET, timeout=5)
    start = time.monotonic()
    assert client.authenticate("alice", b"123456").code == ACCESS_ACCEPT
    assert time.monotonic() - start < 1


def test_state_is_sent_back(scripted_server):
    def handler(req):
        found = dict(attributes(req))
        if STATE not in found:
            return [make_reply(req, ACCESS_CHALLENGE, SECRET, [(STATE, b"s-1"), (REPLY_MESSAGE, b"Code?")])]
        return [make_reply(req, ACCESS_ACCEPT if found[STATE] == b"s-1" else ACCESS_REJECT, SECRET)]
    srv = scripted_server(handler)
    client = RadiusClient([("127.0.0.1", srv.port)], SECRET, timeout=2)
    first = client.authenticate("alice", b"password")
    assert first.code == ACCESS_CHALLENGE and first.message == "Code?"
    assert client.authenticate("alice", b"123456", state=first.state).code == ACCESS_ACCEPT


def test_all_servers_down(scripted_server):
    silent = scripted_server(lambda req: [])
    client = RadiusClient([("127.0.0.1", free_udp_port()), ("127.0.0.1", silent.port)], SECRET, timeout=0.2, retries=0)
    with pytest.raises(RadiusUnavailable):
        client.authenticate("alice", b"123456")
    assert len(client.failures) == 2


def test_client_needs_servers_and_secret():
    with pytest.raises(RadiusError):
        RadiusClient([], SECRET)
    with pytest.raises(RadiusError):
        RadiusClient([("127.0.0.1", 1812)], b"")
