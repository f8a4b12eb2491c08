"""End to end: a real OpenVPN server authenticates through Debian's RADIUS plugin against otp-radiusd, sends it
accounting, and real OpenVPN clients connect with password + one-time code (or OpenVPN's static challenge)."""

from __future__ import annotations

from .conftest import Vpn
from .helpers import VPN_NETWORK


def test_password_and_code_connect_and_the_session_is_accounted(vpn: Vpn) -> None:
    alice = vpn.radiusd.add_user("alice", "alice-pw")
    client = vpn.client("alice", alice.password + alice.code())
    assert client.outcome() == "connected"

    # The plugin sent Accounting-Start at client-connect and waited for our answer before letting the client in.
    (row,) = vpn.radiusd.sessions("--active", "--user", "alice")
    assert (row["client"], row["nas"], row["status"], row["calling_station"]) == \
        ("openvpn", "OpenVpn", "active", "127.0.0.1")
    assert row["framed_ip"].startswith(VPN_NETWORK.rsplit(".", 1)[0] + ".")
    assert row["stop"] is None
    assert any("result=accept" in line for line in vpn.radiusd.decisions("alice"))

    # The client leaves (explicit-exit-notify): the server's client-disconnect sends Accounting-Stop.
    client.stop()
    (row,) = vpn.radiusd.wait_sessions(lambda rows: rows and rows[0]["status"] == "stopped", "--user", "alice")
    assert row["stop"] is not None and row["session_time"] is not None
    assert row["input_octets"] > 0 and row["output_octets"] > 0
    assert vpn.radiusd.sessions("--active", "--user", "alice") == []


def test_wrong_code_is_refused(vpn: Vpn) -> None:
    bob = vpn.radiusd.add_user("bob", "bob-pw")
    client = vpn.client("bob", bob.password + bob.wrong_code())
    assert client.outcome() == "auth_failed"
    assert [line.split("reason=")[1].split()[0] for line in vpn.radiusd.decisions("bob")] == ["wrong_code"]
    assert vpn.radiusd.sessions("--user", "bob") == []


def test_replayed_code_is_refused(vpn: Vpn) -> None:
    carol = vpn.radiusd.add_user("carol", "carol-pw")
    code = carol.code()
    first = vpn.client("carol", carol.password + code)
    assert first.outcome() == "connected"
    first.stop()
    again = vpn.client("carol", carol.password + code)
    assert again.outcome() == "auth_failed"
    reasons = [line.split("reason=")[1].split()[0] for line in vpn.radiusd.decisions("carol")]
    assert reasons == ["ok", "replay"]


def test_static_challenge_asks_for_the_code_separately(vpn: Vpn) -> None:
    """`static-challenge` in the client: OpenVPN prompts for the code and sends SCRV1:<b64 password>:<b64 code>."""
    dave = vpn.radiusd.add_user("dave", "dave-pw")
    client = vpn.client("dave", dave.password, static_challenge=dave.code())
    assert client.outcome() == "connected"
    assert "CHALLENGE: Enter your one-time password" in client.log()
    assert [line.split("reason=")[1].split()[0] for line in vpn.radiusd.decisions("dave")] == ["ok"]
    (row,) = vpn.radiusd.sessions("--active", "--user", "dave")
    assert row["status"] == "active"
    client.stop()


def test_static_challenge_with_a_wrong_code_is_refused(vpn: Vpn) -> None:
    erin = vpn.radiusd.add_user("erin", "erin-pw")
    client = vpn.client("erin", erin.password, static_challenge=erin.wrong_code())
    assert client.outcome() == "auth_failed"
