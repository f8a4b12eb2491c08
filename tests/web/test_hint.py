"""The other doors point users with the right password and no token at the portal (policy.no_token_hint), when
[web] lets them enrol themselves; nobody else learns anything from it."""

from __future__ import annotations

from collections.abc import Callable

from tests.kit.config import Client
from tests.kit.radius_client import UdpClient, build_request
from tests.kit.radiusd import RadiusServer

URL = "https://otp.example.org"


def reply_message(server: RadiusServer, user: str, password: bytes) -> tuple[int, str]:
    with UdpClient(server.address) as client:
        reply = client.ask(build_request(user, password))
    return reply.code, reply.message


def test_radius_reply_message_points_at_the_portal(make_server: Callable[..., RadiusServer]) -> None:
    server = make_server(clients=[Client("vpn", "127.0.0.1")], extra_config=f'[web]\npublic_url = "{URL}"\n')
    server.start()
    server.otp_admin("user", "add", "newbie", "--password-stdin", stdin="pw-of-newbie\n")
    assert reply_message(server, "newbie", b"pw-of-newbie") == (
        3, f"No one-time password token yet: enrol one at {URL}")
    assert reply_message(server, "newbie", b"wrong-password") == (3, "Authentication failed")
    assert reply_message(server, "nobody", b"pw-of-newbie") == (3, "Authentication failed")


def test_no_hint_when_enrolment_is_off_or_the_policy_says_so(make_server: Callable[..., RadiusServer]) -> None:
    for web, policy in ((f'public_url = "{URL}"\nself_enrollment = "off"\n', {}),
                        (f'public_url = "{URL}"\n', {"no_token_hint": False}), ("", {})):
        server = make_server(clients=[Client("vpn", "127.0.0.1")], extra_config=f"[web]\n{web}", policy=policy)
        server.start()
        server.otp_admin("user", "add", "newbie", "--password-stdin", stdin="pw-of-newbie\n")
        assert reply_message(server, "newbie", b"pw-of-newbie") == (3, "Authentication failed"), web
        assert server.stop() == 0
