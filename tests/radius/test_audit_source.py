"""The audit says where a request came from (the RADIUS peer's address), and a user without a store password is
refused as `no_password`, in the log line as in the audit; one client is "1 client" (issue 14, items 3 and 10)."""

from __future__ import annotations

import json
import re
import signal

from otpbase.radius import constants as wire
from tests.kit.config import Client
from tests.kit.radius_client import UdpClient, build_request
from tests.kit.radiusd import RadiusServer


def test_no_password_and_the_source_address_reach_the_log_and_the_audit(make_server: type[RadiusServer]) -> None:
    server = make_server(clients=[Client("vpn", "127.0.0.1")])
    nopw = server.add_user("nopw", password=None)
    withpw = server.add_user("withpw", password="pw")
    server.start()
    with UdpClient(server.address) as client:
        assert client.ask(build_request("nopw", f"pw{nopw.code()}".encode())).code == wire.ACCESS_REJECT
        assert client.ask(build_request("withpw", f"pw{withpw.code()}".encode())).code == wire.ACCESS_ACCEPT
    server.wait_log(r"decision user=withpw ")
    assert [(d["result"], d["reason"], d["from"].rpartition(":")[0]) for d in server.decisions("nopw")] == [
        ("reject", "no_password", "127.0.0.1")]
    out = server.otp_admin("audit", "--json")
    assert out.returncode == 0, out.stderr
    rows = [(r["user"], r["door"], r["client"], r["source"], r["result"], r["reason"])
            for r in json.loads(out.stdout) if r["door"] == "radius"]
    assert rows == [("nopw", "radius", "vpn", "127.0.0.1", "reject", "no_password"),
                    ("withpw", "radius", "vpn", "127.0.0.1", "accept", "ok")]
    table = server.otp_admin("audit").stdout.splitlines()
    assert table[0].split() == ["TIME", "USER", "DOOR", "CLIENT", "SOURCE", "RESULT", "REASON"]
    assert table[-1].split()[1:] == ["withpw", "radius", "vpn", "127.0.0.1", "accept", "ok"]


def test_one_client_is_one_client(make_server: type[RadiusServer]) -> None:
    server = make_server(clients=[Client("vpn", "127.0.0.1")]).start()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGHUP)
    server.wait_log(r"reloaded \S+: 1 client\b")
    assert re.search(r"ready: listening on .* with 1 client\b", server.log()), server.log()
