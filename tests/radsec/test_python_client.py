"""RadSec against a real otp-radiusd, with a client on Python's ssl module and the codec: historic RadSec (RFC 6614)
and RADIUS/1.1 (RFC 9765, which no client packaged in Debian 12 speaks), the refusals, the duplicate cache, the idle
timeout and the clean-up of connections that die."""

from __future__ import annotations

import signal
import socket
import ssl
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT, ACCOUNTING_RESPONSE, STATUS_SERVER
from otpbase.radius.constants import (
    ACCOUNTING_REQUEST,
    ACCT_SESSION_ID,
    ACCT_STATUS_TYPE,
    MESSAGE_AUTHENTICATOR,
    USER_NAME,
)
from tests.kit.config import Client
from tests.kit.radius_client import attributes, build_request, check_reply
from tests.kit.radiusd import RadiusServer
from tests.kit.radsec import RADSEC_SECRET, RadsecClient, RadsecPki, pap11, radius11_request

ALPN11 = ["radius/1.1", "radius/1.0"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> RadsecPki:
    return RadsecPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pki: RadsecPki) -> Iterator[RadiusServer]:
    clients = [Client("nas", "127.0.0.1", secret=None, first_factor="none"),
               Client("named", "127.0.0.5", secret=None, first_factor="none", tls_subject="nas.example")]
    srv = RadiusServer(tmp_path_factory.mktemp("radsec"), clients=clients, radius=pki.radius_keys())
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.fixture(scope="module")
def nas_cert(pki: RadsecPki) -> object:
    return pki.client("nas")


def test_historic_radsec_accept_and_reject(server: RadiusServer, pki: RadsecPki, nas_cert: object) -> None:
    user = server.add_user("hist", None)
    with RadsecClient(pki, nas_cert) as client:  # type: ignore[arg-type]
        assert client.alpn is None
        sent = build_request("hist", user.code().encode(), secret=RADSEC_SECRET)
        assert check_reply(sent, client.ask(sent.raw)).code == ACCESS_ACCEPT
        sent = build_request("hist", user.wrong_code().encode(), secret=RADSEC_SECRET)
        assert check_reply(sent, client.ask(sent.raw)).code == ACCESS_REJECT
    decisions = server.decisions("hist")
    assert [d["result"] for d in decisions] == ["accept", "reject"]
    assert decisions[0]["client"] == "nas"


def test_status_server_is_the_watchdog(server: RadiusServer, pki: RadsecPki, nas_cert: object) -> None:
    before = server.counters()["status_server"]
    with RadsecClient(pki, nas_cert) as client:  # type: ignore[arg-type]
        sent = build_request(None, None, code=STATUS_SERVER, secret=RADSEC_SECRET)
        assert check_reply(sent, client.ask(sent.raw)).code == ACCESS_ACCEPT
    assert server.counters()["status_server"] == before + 1


def test_a_duplicate_gets_the_same_reply_and_is_decided_once(server: RadiusServer, pki: RadsecPki,
                                                              nas_cert: object) -> None:
    user = server.add_user("dup", None)
    before = server.counters()["duplicate_answered"]
    with RadsecClient(pki, nas_cert) as client:  # type: ignore[arg-type]
        sent = build_request("dup", user.code().encode(), secret=RADSEC_SECRET)
        first = client.ask(sent.raw)
        assert client.ask(sent.raw) == first
    assert check_reply(sent, first).code == ACCESS_ACCEPT
    assert len(server.decisions("dup")) == 1
    assert server.counters()["duplicate_answered"] == before + 1


def test_radius11_offered_is_used_without_md5(server: RadiusServer, pki: RadsecPki, nas_cert: object) -> None:
    user = server.add_user("v11", None)
    with RadsecClient(pki, nas_cert, alpn=ALPN11) as client:  # type: ignore[arg-type]
        assert client.alpn == "radius/1.1" and client.sock.version() == "TLSv1.3"
        # A Message-Authenticator means nothing over RADIUS/1.1 (RFC 9765 §5.2): this wrong one is ignored.
        reply = client.ask(pap11("v11", user.code().encode(), b"\x01\x02\x03\x04",
                                 extra=[(MESSAGE_AUTHENTICATOR, bytes(16))]))
        assert reply[0] == ACCESS_ACCEPT and reply[1] == 0
        assert reply[4:8] == b"\x01\x02\x03\x04" and reply[8:20] == bytes(12)  # the Token, then Reserved-2
        assert MESSAGE_AUTHENTICATOR not in [kind for kind, _ in attributes(reply)]
        reply = client.ask(pap11("v11", user.wrong_code().encode(), b"\x01\x02\x03\x05"))
        assert reply[0] == ACCESS_REJECT and reply[4:8] == b"\x01\x02\x03\x05"
        watchdog = client.ask(radius11_request(STATUS_SERVER, b"\xff\xff\xff\xff", []))
        assert watchdog[0] == ACCESS_ACCEPT and watchdog[4:8] == b"\xff\xff\xff\xff"
    assert [d["result"] for d in server.decisions("v11")] == ["accept", "reject"]
    assert "protocol=TLSv1.3 radius/1.1" in server.log()


def test_radius11_accounting_is_recorded(server: RadiusServer, pki: RadsecPki, nas_cert: object) -> None:
    with RadsecClient(pki, nas_cert, alpn=["radius/1.1"]) as client:  # type: ignore[arg-type]
        request = radius11_request(ACCOUNTING_REQUEST, b"\x00\x00\x00\x07", [
            (ACCT_STATUS_TYPE, struct.pack("!I", 1)), (ACCT_SESSION_ID, b"s-v11"), (USER_NAME, b"v11acct")])
        reply = client.ask(request)
    assert reply[0] == ACCOUNTING_RESPONSE and reply[4:8] == b"\x00\x00\x00\x07" and len(reply) == 20
    assert [s.session_id for s in server.sessions()].count("s-v11") == 1


def test_radius10_offered_is_historic_radsec(server: RadiusServer, pki: RadsecPki, nas_cert: object) -> None:
    with RadsecClient(pki, nas_cert, alpn=["radius/1.0"]) as client:  # type: ignore[arg-type]
        assert client.alpn == "radius/1.0"
        sent = build_request(None, None, code=STATUS_SERVER, secret=RADSEC_SECRET)
        assert check_reply(sent, client.ask(sent.raw)).code == ACCESS_ACCEPT


def test_a_certificate_from_another_ca_is_refused(server: RadiusServer, pki: RadsecPki) -> None:
    stranger = pki.client("stranger", ca=pki.other)
    before = server.counters()["tls_refused"]
    # With TLS 1.3 the client's handshake is over before the server has checked its certificate: the refusal may come
    # with the first read.
    with pytest.raises((ssl.SSLError, OSError)), RadsecClient(pki, stranger) as client:
        client.ask(build_request(None, None, code=STATUS_SERVER, secret=RADSEC_SECRET).raw)
    server.wait_log(r"dropped request: reason=tls_handshake client=127\.0\.0\.1 .*certificate verify failed")
    assert server.counters()["tls_refused"] == before + 1


def test_a_client_without_certificate_is_refused(server: RadiusServer, pki: RadsecPki) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(pki.ca_path))
    with socket.create_connection(("127.0.0.1", pki.port), timeout=10) as raw, \
            pytest.raises((ssl.SSLError, OSError)), context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(build_request(None, None, code=STATUS_SERVER, secret=RADSEC_SECRET).raw)
        assert tls.recv(100) == b""  # closed: the handshake failed on the server's side
        raise ConnectionError("closed")


def test_tls_subject_must_match_the_certificate(server: RadiusServer, pki: RadsecPki) -> None:
    wrong = pki.client("evil\x1b[31m")  # a name with a terminal escape in it: logged escaped
    with RadsecClient(pki, wrong, source="127.0.0.5") as client:
        assert client.closed_by_server(10)
    line = server.wait_log(r"dropped request: reason=tls_subject client=127\.0\.0\.5 .*")[-1].group(0)
    assert "\x1b" not in line and "evil\\x1b[31m" in line
    right = pki.client("dns-named", dns_names=("NAS.example",))  # DNS names compare without case
    with RadsecClient(pki, right, source="127.0.0.5") as client:
        sent = build_request(None, None, code=STATUS_SERVER, secret=RADSEC_SECRET)
        assert check_reply(sent, client.ask(sent.raw)).code == ACCESS_ACCEPT
    assert "client=named names=" in server.log()


def test_an_unknown_address_is_refused_before_tls(server: RadiusServer, pki: RadsecPki, nas_cert: object) -> None:
    with pytest.raises((ssl.SSLError, OSError)):
        RadsecClient(pki, nas_cert, source="127.0.0.9")  # type: ignore[arg-type]
    server.wait_log(r"dropped request: reason=unknown_client client=127\.0\.0\.9 from=127\.0\.0\.9:\d+ RadSec")


def test_a_bad_authenticator_closes_the_connection(server: RadiusServer, pki: RadsecPki, nas_cert: object) -> None:
    with RadsecClient(pki, nas_cert) as client:  # type: ignore[arg-type]
        client.send(build_request(None, None, code=STATUS_SERVER, secret=b"not-radsec").raw)
        assert client.closed_by_server(10)
    server.wait_log(r"dropped request: reason=bad_authenticator client=nas from=127\.0\.0\.1:\d+ Status-Server")


def test_a_stream_that_cannot_be_framed_closes_the_connection(server: RadiusServer, pki: RadsecPki,
                                                              nas_cert: object) -> None:
    with RadsecClient(pki, nas_cert) as client:  # type: ignore[arg-type]
        client.send(b"\x01\x02\x00\x05" + bytes(16))  # Length 5: below a header
        assert client.closed_by_server(10)
    server.wait_log(r"radsec connection closed: from=127\.0\.0\.1:\d+ client=nas reason=a packet's Length field")


def test_a_dead_connection_is_cleaned_up(server: RadiusServer, pki: RadsecPki, nas_cert: object) -> None:
    client = RadsecClient(pki, nas_cert)  # type: ignore[arg-type]
    port = client.sock.getsockname()[1]
    sent = build_request(None, None, code=STATUS_SERVER, secret=RADSEC_SECRET)
    check_reply(sent, client.ask(sent.raw))
    # The peer dies: its kernel resets the connection (no TLS close_notify, no FIN).
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.sock.close()
    server.wait_log(rf"radsec connection closed: from=127\.0\.0\.1:{port} client=nas reason=")
    assert server.counters()["tls_open"] == 0


def test_an_idle_connection_is_closed(make_server: object, tmp_path: Path) -> None:
    pki = RadsecPki(tmp_path)
    srv: RadiusServer = make_server(clients=[Client("nas", "127.0.0.1", secret=None)],  # type: ignore[operator]
                                    radius=pki.radius_keys(idle_timeout=1))
    srv.start()
    with RadsecClient(pki, pki.client("nas")) as client:
        sent = build_request(None, None, code=STATUS_SERVER, secret=RADSEC_SECRET)
        check_reply(sent, client.ask(sent.raw))
        assert client.closed_by_server(15)
    srv.wait_log(r"radsec connection closed: from=127\.0\.0\.1:\d+ client=nas reason=idle for 1 s")
    counters = srv.counters()
    assert counters["tls_closed_idle"] == 1 and counters["tls_open"] == 0 and counters["tls_accepted"] == 1


def test_a_reload_closes_the_connections_of_clients_gone(make_server: object, tmp_path: Path) -> None:
    pki = RadsecPki(tmp_path)
    srv: RadiusServer = make_server(clients=[Client("nas", "127.0.0.1", secret=None),  # type: ignore[operator]
                                             Client("other", "127.0.0.2", secret=None)], radius=pki.radius_keys())
    srv.start()
    files = pki.client("nas")
    with RadsecClient(pki, files) as staying, RadsecClient(pki, files, source="127.0.0.2") as going:
        for client in (staying, going):
            sent = build_request(None, None, code=STATUS_SERVER, secret=RADSEC_SECRET)
            check_reply(sent, client.ask(sent.raw))
        srv.clients = [Client("nas", "127.0.0.1", secret=None)]
        srv.write_config()
        srv.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        assert going.closed_by_server(15)
        srv.wait_log(r"radsec connection closed: from=127\.0\.0\.2:\d+ client=other reason=its client is no longer")
        sent = build_request(None, None, code=STATUS_SERVER, secret=RADSEC_SECRET)
        assert check_reply(sent, staying.ask(sent.raw)).code == ACCESS_ACCEPT


def test_several_workers_share_the_radsec_port(make_server: object, tmp_path: Path) -> None:
    pki = RadsecPki(tmp_path)
    nas = Client("nas", "127.0.0.1", secret=None, first_factor="none")
    srv: RadiusServer = make_server(clients=[nas], radius=pki.radius_keys(), workers=2)  # type: ignore[operator]
    srv.start()
    user = srv.add_user("w2", None)
    clients = [RadsecClient(pki, pki.client("nas")) for _ in range(4)]
    try:
        sent = build_request("w2", user.code().encode(), secret=RADSEC_SECRET)
        assert check_reply(sent, clients[0].ask(sent.raw)).code == ACCESS_ACCEPT
        for client in clients[1:]:  # the same code again, on connections that may reach either worker: a replay
            sent = build_request("w2", user.code().encode(), secret=RADSEC_SECRET)
            assert check_reply(sent, client.ask(sent.raw)).code == ACCESS_REJECT
    finally:
        for client in clients:
            client.close()
    assert [d["reason"] for d in srv.decisions("w2")][1:] == ["replay"] * 3
    assert srv.counters()["tls_accepted"] == 4
