"""Issue 13's attacks from a NAS login page, through a real otp-radiusd: the password as an oracle, a client guessing
across users, and an empty password listing who has which tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT
from tests.kit.config import Client
from tests.kit.radius_client import UdpClient, build_request, check_reply
from tests.kit.radiusd import RadiusServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RadiusServer]:
    srv = RadiusServer(tmp_path, clients=[Client("nas", "127.0.0.1"), Client("otp-only", "127.0.0.2",
                                                                             first_factor="none")],
                       policy={"max_failures": 5, "lockout_seconds": 300, "client_max_failures": 20,
                               "client_failure_window": 600})
    srv.start()
    yield srv
    srv.stop()


def ask(server: RadiusServer, user: str, password: bytes, source: str = "127.0.0.1") -> tuple[int, str, bool]:
    sent = build_request(user, password)
    with UdpClient(server.address, source) as client:
        raw = client.exchange(sent)
    assert raw is not None, f"no answer for {user}"
    reply = check_reply(sent, raw)
    return reply.code, reply.message, reply.state is not None


def test_wrong_passwords_then_the_right_one_alone_is_no_longer_a_yes(server: RadiusServer) -> None:
    alice = server.add_user("alice", "alice-pw")
    assert ask(server, "alice", b"alice-pw")[0] == ACCESS_CHALLENGE  # the password alone: a challenge
    for n in range(5):
        assert ask(server, "alice", b"guess-%d" % n)[0] == ACCESS_REJECT
    code, message, state = ask(server, "alice", b"alice-pw")
    assert (code, state) == (ACCESS_REJECT, False)  # locked: the right password gets no challenge
    assert ask(server, "alice", b"alice-pw" + alice.code().encode())[0] == ACCESS_REJECT
    assert [d["reason"] for d in server.decisions("alice")][-2:] == ["locked", "locked"]
    assert "Locked" not in message and "password" not in message.lower()  # the reply says nothing of why


def test_a_client_guessing_across_users_is_throttled(server: RadiusServer) -> None:
    bob = server.add_user("bob", "bob-pw")
    for n in range(20):  # one guess each for twenty users: under every user's lockout
        assert ask(server, f"user{n}", b"guess123456")[0] == ACCESS_REJECT
    assert ask(server, "bob", b"bob-pw" + bob.code().encode())[0] == ACCESS_REJECT
    assert server.decisions("bob")[-1]["reason"] == "throttled"
    # another client is not affected
    assert ask(server, "bob", bob.code().encode(), source="127.0.0.2")[0] == ACCESS_ACCEPT


def test_an_empty_password_answers_the_same_for_everybody(server: RadiusServer) -> None:
    server.add_user("carol", "carol-pw")
    server.otp_admin("user", "add", "dave")  # no token at all
    answers = {user: ask(server, user, b"", source="127.0.0.2") for user in ("carol", "dave", "nobody")}
    assert set(answers.values()) == {(ACCESS_CHALLENGE, "Enter your one-time password", True)}
