"""Accounting-Request decoding and Accounting-Response encoding (RFC 2866), checked by hand-built packets, by pyrad
and by FreeRADIUS's radclient."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from pyrad import packet as rpacket

from otpbase.radius import BAD_AUTHENTICATOR, MALFORMED, MISSING_MESSAGE_AUTHENTICATOR, UNSUPPORTED_CODE, Drop
from otpbase.radius.accounting import AccountingRequest, decode_accounting
from otpbase.radius.authenticators import accounting_request_authenticator
from otpbase.radius.constants import (
    ACCOUNTING_ON,
    ACCOUNTING_REQUEST,
    ACCOUNTING_RESPONSE,
    ACCT_DELAY_TIME,
    ACCT_INPUT_GIGAWORDS,
    ACCT_INPUT_OCTETS,
    ACCT_OUTPUT_GIGAWORDS,
    ACCT_OUTPUT_OCTETS,
    ACCT_SESSION_ID,
    ACCT_SESSION_TIME,
    ACCT_STATUS_TYPE,
    ACCT_TERMINATE_CAUSE,
    CALLING_STATION_ID,
    EVENT_TIMESTAMP,
    FRAMED_IP_ADDRESS,
    INTERIM_UPDATE,
    NAS_IDENTIFIER,
    NAS_IP_ADDRESS,
    NAS_IPV6_ADDRESS,
    PROXY_STATE,
    START,
    STATUS_SERVER,
    STOP,
    TERMINATE_CAUSES,
    USER_NAME,
)
from otpbase.radius.replies import encode_accounting_response
from radiusd.accounting import session_event
from radiusd.dictionary import load_dictionary
from tests.kit.scripted import ScriptedServer

from .helpers import (
    SECRET,
    accounting_request,
    check_response,
    integer,
    ip,
    session_attrs,
    status_server,
)


def drop_reason(data: bytes, secret: bytes = SECRET) -> str:
    with pytest.raises(Drop) as info:
        decode_accounting(data, secret)
    return info.value.reason


# -- decoding ---------------------------------------------------------------------------------------------------------


def test_start_is_decoded() -> None:
    raw = accounting_request(session_attrs(START, "abc", extra=[
        (FRAMED_IP_ADDRESS, ip("10.8.0.6")), (CALLING_STATION_ID, b"198.51.100.7"), (NAS_IDENTIFIER, b"OpenVpn"),
        (ACCT_DELAY_TIME, integer(3))]))
    req = decode_accounting(raw, SECRET)
    assert (req.code, req.id, req.authenticator) == (ACCOUNTING_REQUEST, 7, raw[4:20])
    assert req.status_type == START and req.status_name == "start"
    assert (req.session_id, req.user, req.nas_address, req.nas_identifier) == ("abc", "alice", "192.0.2.1", "OpenVpn")
    assert (req.framed_ip, req.calling_station, req.delay_time) == ("10.8.0.6", "198.51.100.7", 3)
    assert req.event_time(1000.0) == 997.0


def test_stop_counters_include_gigawords_and_the_cause_is_named() -> None:
    raw = accounting_request(session_attrs(STOP, extra=[
        (ACCT_INPUT_OCTETS, integer(5)), (ACCT_INPUT_GIGAWORDS, integer(2)), (ACCT_OUTPUT_OCTETS, integer(7)),
        (ACCT_SESSION_TIME, integer(120)), (ACCT_TERMINATE_CAUSE, integer(1)),
        (EVENT_TIMESTAMP, integer(1_700_000_000))]))
    req = decode_accounting(raw, SECRET)
    assert req.input_octets == 2 * 2**32 + 5
    assert req.output_octets == 7
    assert req.session_time == 120
    assert req.terminate_cause == "User-Request"
    assert req.event_time(1_800_000_000.0) == 1_700_000_000.0  # Event-Timestamp wins over the arrival time


def test_gigawords_alone_and_unknown_cause_number() -> None:
    raw = accounting_request(session_attrs(STOP, extra=[(ACCT_OUTPUT_GIGAWORDS, integer(1)),
                                                             (ACCT_TERMINATE_CAUSE, integer(250))]))
    req = decode_accounting(raw, SECRET)
    assert (req.input_octets, req.output_octets, req.terminate_cause) == (None, 2**32, "250")


def test_terminate_cause_names_are_those_of_the_shipped_dictionary() -> None:
    """The codec names causes from its own table (no pyrad on the server's path): the same as the dictionary's."""
    values = load_dictionary().attributes["Acct-Terminate-Cause"].values
    assert {int.from_bytes(number, "big"): name for name, number in values.forward.items()} == TERMINATE_CAUSES


def test_proxy_states_that_leave_no_room_for_the_response_are_malformed() -> None:
    """As for Access-Requests (otpbase.radius.framing.echoed_proxy_states): the response could not be sent."""
    fits = accounting_request(session_attrs(START, extra=[(PROXY_STATE, b"p" * 253)] * 13))
    assert len(encode_accounting_response(decode_accounting(fits, SECRET), SECRET)) <= 4096
    full = accounting_request(session_attrs(START, extra=[(PROXY_STATE, b"p" * 253)] * 15))
    assert len(full) <= 4096 and drop_reason(full) == MALFORMED


def test_nas_ipv6_address_and_source_fallback() -> None:
    attrs = [(ACCT_STATUS_TYPE, integer(START)), (ACCT_SESSION_ID, b"s"), (NAS_IPV6_ADDRESS, ip("2001:db8::1"))]
    req = decode_accounting(accounting_request(attrs), SECRET)
    assert req.nas_address == "2001:db8::1"
    bare = decode_accounting(accounting_request(attrs[:2]), SECRET)
    assert bare.nas_address is None
    event = session_event(bare, "vpn", "127.0.0.9", now=50.0)
    assert (event.client, event.session_id, event.nas_address, event.event_time) == ("vpn", "s", "127.0.0.9", 50.0)


def test_ill_sized_optional_values_are_ignored() -> None:
    raw = accounting_request(session_attrs(INTERIM_UPDATE, extra=[(ACCT_INPUT_OCTETS, b"\x01\x02"),
                                                                       (FRAMED_IP_ADDRESS, b"\x0a\x08")]))
    req = decode_accounting(raw, SECRET)
    assert (req.input_octets, req.framed_ip) == (None, None)


def test_pyrad_built_request_is_accepted() -> None:
    """An independent encoder: pyrad's AcctPacket computes the RFC 2866 Request Authenticator itself."""
    pkt = rpacket.AcctPacket(id=33, secret=SECRET, dict=load_dictionary())
    pkt["Acct-Status-Type"] = "Interim-Update"
    pkt["Acct-Session-Id"] = "pyrad-1"
    pkt["User-Name"] = "bob"
    pkt["Acct-Output-Octets"] = 99
    raw = pkt.RequestPacket()
    req = decode_accounting(raw, SECRET)
    assert (req.status_type, req.session_id, req.user, req.output_octets) == (INTERIM_UPDATE, "pyrad-1", "bob", 99)


def test_message_authenticator_is_checked_when_present() -> None:
    raw = accounting_request(session_attrs(START), ma=True)
    assert decode_accounting(raw, SECRET).session_id == "sess-1"
    # Forge: a wrong Message-Authenticator under a Request Authenticator recomputed to match it.
    forged = bytearray(raw)
    forged[22] ^= 0xFF
    forged[4:20] = accounting_request_authenticator(bytes(forged), SECRET)
    assert drop_reason(bytes(forged)) == BAD_AUTHENTICATOR


def test_wrong_secret_is_dropped() -> None:
    raw = accounting_request(session_attrs(START), secret=b"not-the-secret")
    assert drop_reason(raw) == BAD_AUTHENTICATOR


def test_tampered_attribute_is_dropped() -> None:
    raw = bytearray(accounting_request(session_attrs(START, "abc")))
    raw[raw.index(b"abc")] = ord("x")
    assert drop_reason(bytes(raw)) == BAD_AUTHENTICATOR


def test_random_authenticator_is_dropped() -> None:
    """An Access-Request-style random authenticator is not an Accounting-Request's."""
    raw = bytearray(accounting_request(session_attrs(START)))
    raw[4:20] = bytes(range(16))
    assert drop_reason(bytes(raw)) == BAD_AUTHENTICATOR


def _with_length(raw: bytes, length: int) -> bytes:
    return raw[:2] + length.to_bytes(2, "big") + raw[4:]


@pytest.mark.parametrize("make", [
    lambda: b"\x04\x01\x00",
    lambda: _with_length(accounting_request(session_attrs(START)), 19),
    lambda: _with_length(accounting_request(session_attrs(START)), 500),
    lambda: accounting_request([(ACCT_SESSION_ID, b"no-status-type")]),
    lambda: accounting_request([(ACCT_STATUS_TYPE, integer(START))]),  # no Acct-Session-Id
    lambda: accounting_request([(ACCT_STATUS_TYPE, integer(STOP)), (ACCT_SESSION_ID, b"")]),
    lambda: accounting_request([(ACCT_STATUS_TYPE, b"\x01")]),
], ids=["short", "length-below-header", "length-past-datagram", "no-status-type", "start-without-session-id",
        "empty-session-id", "status-type-size"])
def test_malformed_is_dropped(make: Callable[[], bytes]) -> None:
    assert drop_reason(make()) == MALFORMED


def test_bad_attribute_framing_is_dropped() -> None:
    raw = accounting_request(session_attrs(START))
    bad = raw + bytes((USER_NAME, 9, 0x41))  # runs past the end
    bad = _with_length(bad, len(bad))
    bad = bad[:4] + accounting_request_authenticator(bad, SECRET) + bad[20:]
    assert drop_reason(bad) == MALFORMED


def test_padding_past_length_is_ignored() -> None:
    raw = accounting_request(session_attrs(START))
    assert decode_accounting(raw + b"\0\0\0", SECRET).session_id == "sess-1"


def test_accounting_on_needs_no_session_id() -> None:
    raw = accounting_request([(ACCT_STATUS_TYPE, integer(ACCOUNTING_ON)), (NAS_IP_ADDRESS, ip("192.0.2.1"))])
    req = decode_accounting(raw, SECRET)
    assert (req.status_name, req.session_id) == ("accounting-on", None)


def test_access_request_on_the_accounting_port_is_dropped() -> None:
    raw = accounting_request(session_attrs(START), code=1)
    assert drop_reason(raw) == "unsupported_code" == UNSUPPORTED_CODE


def test_status_server_needs_a_valid_message_authenticator() -> None:
    req = decode_accounting(status_server(), SECRET)
    assert (req.code, req.status_name) == (STATUS_SERVER, "status-server")
    assert drop_reason(status_server(ma=False)) == MISSING_MESSAGE_AUTHENTICATOR
    assert drop_reason(status_server(secret=b"wrong")) == BAD_AUTHENTICATOR


# -- the response -----------------------------------------------------------------------------------------------------


def test_response_is_signed_and_echoes_proxy_state_in_order() -> None:
    raw = accounting_request(session_attrs(START, extra=[(PROXY_STATE, b"first"), (PROXY_STATE, b"second")]),
                             ident=200)
    reply = encode_accounting_response(decode_accounting(raw, SECRET), SECRET)
    attrs = check_response(raw, reply)
    assert [v for t, v in attrs if t == PROXY_STATE] == [b"first", b"second"]
    assert [t for t, _ in attrs] == [80, PROXY_STATE, PROXY_STATE]


def test_status_server_response() -> None:
    raw = status_server(ident=3)
    reply = encode_accounting_response(decode_accounting(raw, SECRET), SECRET)
    assert check_response(raw, reply) == [(80, reply[22:38])]


def test_pyrad_verifies_the_response() -> None:
    pkt = rpacket.AcctPacket(id=44, secret=SECRET, dict=load_dictionary())
    pkt["Acct-Status-Type"] = "Start"
    pkt["Acct-Session-Id"] = "pyrad-2"
    raw = pkt.RequestPacket()
    reply = encode_accounting_response(decode_accounting(raw, SECRET), SECRET)
    decoded = rpacket.Packet(packet=reply, secret=SECRET, dict=load_dictionary())
    assert decoded.code == ACCOUNTING_RESPONSE
    assert pkt.VerifyReply(decoded, reply)  # ID, Response Authenticator and Message-Authenticator
    assert decoded.verify_message_authenticator(original_authenticator=raw[4:20], original_code=4)


# -- radclient (FreeRADIUS) against a tiny responder -----------------------------------------------------------------


class Responder:
    """Answers Accounting-Requests on a loopback port with decode_accounting + encode_accounting_response."""

    def __init__(self, secret: bytes = SECRET) -> None:
        self.secret = secret
        self.requests: list[AccountingRequest] = []
        self.drops: list[str] = []
        self.server = ScriptedServer(self._answer)
        self.port = self.server.port

    def _answer(self, data: bytes) -> list[bytes]:
        try:
            req = decode_accounting(data, self.secret)
        except Drop as drop:
            self.drops.append(drop.reason)
            return []
        self.requests.append(req)
        return [encode_accounting_response(req, self.secret)]

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def responder() -> Iterator[Responder]:
    r = Responder()
    yield r
    r.close()


def radclient(tool: str, port: int, kind: str, secret: str, attrs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool, "-x", "-r", "1", "-t", "1", f"127.0.0.1:{port}", kind, secret], input=attrs,
                          capture_output=True, text=True, timeout=20)


def test_radclient_accounting(require_tool: Callable[[str], str], responder: Responder) -> None:
    tool = require_tool("radclient")
    attrs = ('Acct-Status-Type = Stop\nAcct-Session-Id = "rc-1"\nUser-Name = "carol"\nAcct-Input-Octets = 10\n'
             "Acct-Input-Gigawords = 1\nAcct-Terminate-Cause = Idle-Timeout\nFramed-IP-Address = 10.8.0.9\n"
             "Proxy-State = 0x0102\n")
    out = radclient(tool, responder.port, "acct", "testing123", attrs)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Received Accounting-Response" in out.stdout
    (req,) = responder.requests
    assert (req.session_id, req.user, req.input_octets, req.terminate_cause, req.framed_ip) == \
        ("rc-1", "carol", 2**32 + 10, "Idle-Timeout", "10.8.0.9")


def test_radclient_with_message_authenticator(require_tool: Callable[[str], str], responder: Responder) -> None:
    """radclient computes and checks Message-Authenticators of accounting packets the FreeRADIUS way."""
    tool = require_tool("radclient")
    out = radclient(tool, responder.port, "acct", "testing123",
                    'Acct-Status-Type = Start\nAcct-Session-Id = "rc-2"\nMessage-Authenticator = 0x00\n')
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Received Accounting-Response" in out.stdout and "Message-Authenticator" in out.stdout
    out = radclient(tool, responder.port, "status", "testing123", "Message-Authenticator = 0x00\n")
    assert out.returncode == 0, out.stdout + out.stderr
    assert [r.code for r in responder.requests] == [ACCOUNTING_REQUEST, STATUS_SERVER]


def test_radclient_wrong_secret_gets_no_answer(require_tool: Callable[[str], str], responder: Responder) -> None:
    tool = require_tool("radclient")
    out = radclient(tool, responder.port, "acct", "wrong-secret", 'Acct-Status-Type = Start\nAcct-Session-Id = "x"\n')
    assert out.returncode != 0
    assert "No reply" in out.stdout + out.stderr
    assert responder.requests == [] and responder.drops == [BAD_AUTHENTICATOR]
