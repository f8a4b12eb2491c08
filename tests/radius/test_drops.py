"""Every dropped request explained: a warning line per client and reason (rate-limited), each one at debug level.

The rate limit itself is checked on DropLog with the clock passed in; the server is checked with real packets."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from otpbase.radius import ACCOUNTING_REQUEST, STATUS_SERVER
from radiusd.droplog import DropLog
from tests.kit.config import Client
from tests.kit.radius_client import SILENCE_TIMEOUT, UdpClient, build_request
from tests.kit.radiusd import RadiusServer

CLIENTS = [Client("nas", "127.0.0.1"), Client("legacy", "127.0.0.3", require_message_authenticator=False)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadiusServer]:
    srv = RadiusServer(tmp_path_factory.mktemp("drops"), clients=CLIENTS, args=["--log-level", "debug"])
    srv.start()
    yield srv
    assert srv.stop() == 0, srv.log()


def send(server: RadiusServer, raw: bytes, source: str = "127.0.0.1") -> int:
    """Sends `raw`, checks nothing comes back; returns the source port."""
    with UdpClient(server.address, source=source) as client:
        client.send(raw)
        assert client.receive(SILENCE_TIMEOUT) is None
        return client.port


def warning(server: RadiusServer, reason: str, client: str, port: int) -> str:
    pattern = rf"WARNING dropped request: reason={reason} client={re.escape(client)} from=[\d.]+:{port} .*"
    return server.wait_log(pattern)[-1].group(0)


@pytest.mark.parametrize(("reason", "raw", "source", "client"), [
    ("unknown_client", build_request("u", b"pw").raw, "127.0.0.9", "127.0.0.9"),
    ("missing_message_authenticator", build_request("u", b"pw", ma=False).raw, "127.0.0.1", "nas"),
    ("bad_authenticator", build_request("u", b"pw", secret=b"another secret").raw, "127.0.0.1", "nas"),
    ("malformed", build_request("u", b"pw").raw[:19], "127.0.0.1", "nas"),
    ("malformed", build_request(None, b"pw").raw, "127.0.0.3", "legacy"),  # no User-Name
    ("unsupported_code", build_request("u", b"pw", code=ACCOUNTING_REQUEST).raw, "127.0.0.3", "legacy"),
])
def test_each_kind_of_drop_is_explained(server: RadiusServer, reason: str, raw: bytes, source: str,
                                        client: str) -> None:
    port = send(server, raw, source)
    line = warning(server, reason, client, port)
    assert "more of these are counted" in line
    if reason == "unsupported_code":
        assert "Accounting-Request" in line


def test_the_same_drop_again_is_counted_not_logged_but_shown_at_debug(server: RadiusServer) -> None:
    raw = build_request(None, None, code=STATUS_SERVER, secret=b"yet another secret").raw
    ports = [send(server, raw, "127.0.0.3") for _ in range(3)]
    warning(server, "bad_authenticator", "legacy", ports[0])
    for port in ports:  # --log-level debug: every one
        server.wait_log(rf"DEBUG dropped request: reason=bad_authenticator client=legacy from=127\.0\.0\.3:{port} "
                        "Status-Server")
    assert len(re.findall(r"WARNING dropped request: reason=bad_authenticator client=legacy ", server.log())) == 1
    assert server.counters()["bad_authenticator"] >= 3


def test_rate_limit_one_line_at_once_then_a_count_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    drops = DropLog(interval=60)
    caplog.set_level(logging.WARNING, logger="otp.radiusd")
    for second in (0, 1, 2, 30):
        drops.drop("malformed", "nas", ("10.0.0.1", 1000 + second), "Access-Request id=1 length=19", now=second)
    drops.drop("malformed", "vpn", ("10.0.0.2", 5), b"\x01\x02\x00", now=31)  # another client
    assert [r.getMessage().split(" from=")[0] for r in caplog.records] == [
        "dropped request: reason=malformed client=nas", "dropped request: reason=malformed client=vpn"]
    caplog.clear()
    drops.flush(59)
    assert not caplog.records
    drops.flush(60)  # the minute is over: the three since the first line
    assert [r.getMessage() for r in caplog.records] == [
        "dropped requests: reason=malformed client=nas count=3 since the last line, the last from=10.0.0.1:1030 "
        "Access-Request id=1 length=19"]
    caplog.clear()
    drops.flush(120)  # nothing since: nothing said, and the next drop is logged at once again
    drops.drop("malformed", "nas", ("10.0.0.1", 7), "Access-Request id=3 length=19", now=121)
    assert [r.getMessage().split(" from=")[0] for r in caplog.records] == [
        "dropped request: reason=malformed client=nas"]


def test_a_flood_from_forged_addresses_stays_bounded(caplog: pytest.LogCaptureFixture) -> None:
    drops = DropLog(max_keys=4)
    caplog.set_level(logging.WARNING, logger="otp.radiusd")
    for i in range(100):
        drops.drop("unknown_client", f"10.0.{i}.1", (f"10.0.{i}.1", 9), "Access-Request id=1 length=40", now=1)
    assert len(caplog.records) == 5  # four addresses, then "(others)" once
    assert "client=(others) " in caplog.records[-1].getMessage()
