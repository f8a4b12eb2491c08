"""Reply attributes on the wire (issue 19, item 4): set with the real otp-admin, sent by a real otp-radiusd, read back
by radclient (FreeRADIUS's own dictionaries decode them, vendors' attributes included) and by pyrad."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator

import pytest
from pyrad import packet as rpacket

from otpbase.radius import ACCESS_ACCEPT, ACCESS_REJECT
from tests.kit.config import Client
from tests.kit.radius_client import SECRET, UdpClient, build_request, pyrad_client, pyrad_login
from tests.kit.radiusd import RadiusServer, User
from tests.kit.tools import tool

CLIENTS = [Client("vpn", "127.0.0.1"), Client("otp-only", "127.0.0.2", first_factor="none")]
AVPAIR_1 = "ip:inacl#1=permit tcp any host 10.0.0.10 eq 443"
AVPAIR_2 = "ip:inacl#2=deny ip any any"
VPN_ADMINS = ["Class=vpn-admins", f"Cisco-AVPair={AVPAIR_1}", f"Cisco-AVPair={AVPAIR_2}",
              "Fortinet-Group-Name=vpn-admins", "Filter-Id=admins-acl"]
# What radclient prints of them, in order (Class is octets: radclient shows it in hex).
VPN_ADMINS_SEEN = [("Class", "0x" + b"vpn-admins".hex()), ("Cisco-AVPair", f'"{AVPAIR_1}"'),
                   ("Cisco-AVPair", f'"{AVPAIR_2}"'), ("Fortinet-Group-Name", '"vpn-admins"'),
                   ("Filter-Id", '"admins-acl"')]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadiusServer]:
    srv = RadiusServer(tmp_path_factory.mktemp("replies"), clients=CLIENTS)
    srv.start()
    admin(srv, "group", "set", "vpn-admins", *replies(VPN_ADMINS))
    yield srv
    assert srv.stop() == 0, srv.log()


def admin(server: RadiusServer, *args: str) -> str:
    out = server.otp_admin(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def replies(pairs: list[str]) -> list[str]:
    return [arg for pair in pairs for arg in ("--reply", pair)]


def radclient_login(server: RadiusServer, user: str, password: str) -> tuple[str, list[tuple[str, str]]]:
    """The reply's kind and its attributes as radclient decodes them, Message-Authenticator and Reply-Message left
    out (every reply has them)."""
    out = subprocess.run([tool("radclient"), "-x", "-t", "2", "-r", "1", f"127.0.0.1:{server.auth_port}", "auth",
                          SECRET.decode()],
                         input=f'User-Name = "{user}", User-Password = "{password}", Message-Authenticator = 0x00',
                         capture_output=True, text=True, timeout=30)
    received = out.stdout.partition("Received ")[2]
    assert received, out.stdout + out.stderr
    kind = received.split()[0]
    seen = []
    for line in received.splitlines()[1:]:
        if not line.startswith("\t"):
            break
        name, _, value = line.strip().partition(" = ")
        if name not in ("Message-Authenticator", "Reply-Message"):
            seen.append((name, value))
    return kind, seen


def user_in(server: RadiusServer, name: str, *args: str) -> User:
    user = server.add_user(name, f"{name}-pw")
    admin(server, "user", "set", name, *args)
    return user


def test_radclient_reads_the_groups_attributes_in_order(server: RadiusServer) -> None:
    alice = user_in(server, "alice", "--group", "vpn-admins")
    assert radclient_login(server, "alice", f"alice-pw{alice.code()}") == ("Access-Accept", VPN_ADMINS_SEEN)


def test_a_users_own_attributes_follow_the_groups_and_replace_the_same_attribute(server: RadiusServer) -> None:
    bob = user_in(server, "bob", "--group", "vpn-admins", "--reply", "Filter-Id=bob-acl", "--reply",
                  "Session-Timeout=3600", "--reply", "Cisco-AVPair=ip:inacl#1=permit ip any any")
    kind, seen = radclient_login(server, "bob", f"bob-pw{bob.code()}")
    assert kind == "Access-Accept"
    # The group's Cisco-AVPairs and Filter-Id are replaced by bob's; the rest of the group's come first, in order.
    assert seen == [("Class", "0x" + b"vpn-admins".hex()), ("Fortinet-Group-Name", '"vpn-admins"'),
                    ("Filter-Id", '"bob-acl"'), ("Session-Timeout", "3600"),
                    ("Cisco-AVPair", '"ip:inacl#1=permit ip any any"')]


def test_vendor_and_tagged_attributes_of_several_vendors(server: RadiusServer) -> None:
    admin(server, "group", "set", "wifi-staff", *replies([
        "Tunnel-Type:1=VLAN", "Tunnel-Medium-Type:1=IEEE-802", "Tunnel-Private-Group-Id:1=42",
        "Aruba-User-Role=staff", "PaloAlto-User-Group=staff", "Juniper-Local-User-Name=remote-staff",
        "ASA-Group-Policy=staff-policy", "MS-Primary-DNS-Server=10.0.0.53", "Framed-IP-Address=10.9.8.7"]))
    carol = user_in(server, "carol", "--group", "wifi-staff")
    assert radclient_login(server, "carol", f"carol-pw{carol.code()}") == ("Access-Accept", [
        ("Tunnel-Type:1", "VLAN"), ("Tunnel-Medium-Type:1", "IEEE-802"), ("Tunnel-Private-Group-Id:1", '"42"'),
        ("Aruba-User-Role", '"staff"'), ("PaloAlto-User-Group", '"staff"'),
        ("Juniper-Local-User-Name", '"remote-staff"'), ("ASA-Group-Policy", '"staff-policy"'),
        ("MS-Primary-DNS-Server", "10.0.0.53"), ("Framed-IP-Address", "10.9.8.7")])


def test_only_an_accept_carries_them(server: RadiusServer) -> None:
    dave = user_in(server, "dave", "--group", "vpn-admins")
    assert radclient_login(server, "dave", f"dave-pw{dave.wrong_code()}") == ("Access-Reject", [])
    with pyrad_client(server) as client:
        challenge = pyrad_login(client, "dave", b"dave-pw")  # the password alone: a challenge asks for the code
        assert challenge.code == rpacket.AccessChallenge
        assert set(challenge.keys()) == {"Message-Authenticator", "Reply-Message", "State"}
        accept = pyrad_login(client, "dave", dave.code().encode(), state=challenge["State"][0])
    assert accept.code == rpacket.AccessAccept
    # pyrad decodes with the server's own dictionary: the same values, vendor attributes included
    assert accept["Class"] == [b"vpn-admins"]
    assert accept["Cisco-AVPair"] == [AVPAIR_1, AVPAIR_2]
    assert accept["Fortinet-Group-Name"] == ["vpn-admins"]
    assert accept["Filter-Id"] == ["admins-acl"]


def test_a_user_without_any_sends_what_it_always_sent(server: RadiusServer) -> None:
    erin = server.add_user("erin", "erin-pw")
    assert radclient_login(server, "erin", f"erin-pw{erin.code()}") == ("Access-Accept", [])


def test_code_checks_decided_in_groups_carry_them_too(server: RadiusServer) -> None:
    frank = user_in(server, "frank", "--group", "vpn-admins", "--reply", "Session-Timeout=600")
    with UdpClient(server.address, source="127.0.0.2") as otp_only:
        reply = otp_only.ask(build_request("frank", frank.code().encode()))
    assert reply.code == ACCESS_ACCEPT
    assert [t for t, _ in reply.attrs] == [80, 18, 25, 26, 26, 26, 11, 27]  # MA, Reply-Message, then the granted
    assert reply.get(25) == [b"vpn-admins"] and reply.get(27) == [(600).to_bytes(4, "big")]
    assert reply.get(26)[2] == (12356).to_bytes(4, "big") + bytes((1, 12)) + b"vpn-admins"  # Fortinet, type 1


def test_a_changed_group_is_sent_at_the_next_accept_without_a_reload(server: RadiusServer) -> None:
    admin(server, "group", "set", "changing", "--reply", "Filter-Id=before")
    gina = user_in(server, "gina", "--group", "changing")
    assert radclient_login(server, "gina", f"gina-pw{gina.code()}")[1] == [("Filter-Id", '"before"')]
    admin(server, "group", "set", "changing", "--reply", "Filter-Id=after", "--reply", "Idle-Timeout=300")
    code = gina.code(time.time() + 30)  # the next step: the current one is used
    assert radclient_login(server, "gina", f"gina-pw{code}")[1] == [("Filter-Id", '"after"'),
                                                                     ("Idle-Timeout", "300")]


def test_attributes_that_no_longer_encode_refuse_the_accept(server: RadiusServer) -> None:
    """Only a store written past otp-admin (or a dictionary changed since) can hold them: the Accept is refused
    rather than sent without what it should grant, and the error is logged once per list."""
    hank = user_in(server, "hank", "--reply", "Filter-Id=fine")
    with sqlite3.connect(server.store_path) as conn:
        conn.execute("""UPDATE users SET reply = '[["No-Such-Attribute", "x"]]' WHERE name = 'hank'""")
    conn.close()
    with UdpClient(server.address) as nas:
        reply = nas.ask(build_request("hank", f"hank-pw{hank.code()}".encode()))
        assert reply.code == ACCESS_REJECT and reply.message == "Authentication failed"
        again = nas.ask(build_request("hank", f"hank-pw{hank.code(time.time() + 30)}".encode()))
        assert again.code == ACCESS_REJECT
    assert [d["reason"] for d in server.decisions("hank")] == ["bad_reply_attributes"] * 2
    assert server.log().count("reply attributes that cannot be encoded (unknown attribute 'No-Such-Attribute'") == 1
