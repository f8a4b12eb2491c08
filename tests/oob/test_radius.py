"""The RADIUS door with email/sms tokens: a real otp-radiusd, radclient as the NAS, the code arriving in aiosmtpd or
in the local SMS gateway."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyrad import packet

from otpcore.admin import TokenSpec, UserSpec
from tests.kit.config import Client
from tests.kit.radius_client import SECRET, pyrad_client, pyrad_login
from tests.kit.radiusd import RadiusServer
from tests.kit.tools import tool

from .conftest import Mailbox, SmsGateway, sms_table, smtp_table


@pytest.fixture
def radiusd(tmp_path: Path) -> Iterator[Callable[..., RadiusServer]]:
    """make(delivery tables, first_factor) -> otp-radiusd (not started) with one client (127.0.0.1) and the user
    alice (password s3cret, an e-mail address and a phone number), who has no token yet."""
    servers: list[RadiusServer] = []

    def make(delivery: str, first_factor: str = "store") -> RadiusServer:
        folder = tmp_path / f"radiusd{len(servers)}"
        folder.mkdir()
        server = RadiusServer(folder, clients=[Client("nas", "127.0.0.1", first_factor=first_factor)],
                              policy={"oob_resend_interval": 0}, extra_config=delivery)
        with server.admin() as admin:
            admin.add_user(UserSpec("alice", email="alice@example.org", phone="+15550100", password=b"s3cret"),
                           now=time.time())
        servers.append(server)
        return server

    yield make
    for server in servers:
        if server.proc is not None:
            assert server.stop() == 0, server.log()


def add_token(server: RadiusServer, type: str) -> None:
    with server.admin() as admin:
        admin.add_token("alice", TokenSpec(type=type), now=time.time())


def radclient(server: RadiusServer, password: str, state: str | None = None, timeout: int = 3
              ) -> tuple[str, dict[str, str]]:
    """One Access-Request by FreeRADIUS's radclient; returns the reply's type and attributes."""
    attrs = ['User-Name = "alice"', f'User-Password = "{password}"', "Message-Authenticator = 0x00"]
    if state is not None:
        attrs.append(f"State = {state}")
    out = subprocess.run([tool("radclient"), "-x", "-r", "1", "-t", str(timeout), f"127.0.0.1:{server.auth_port}",
                          "auth", SECRET.decode()],
                         input="\n".join(attrs) + "\n", capture_output=True, text=True, timeout=timeout + 10)
    kind = re.search(r"Received (Access-\w+)", out.stdout)
    assert kind, f"no answer from otp-radiusd: {out.stdout}{out.stderr}\n{server.log()}"
    reply = dict(re.findall(r"^\s+([\w-]+) = (.*)$", out.stdout.split("Received", 1)[1], re.MULTILINE))
    return kind.group(1), reply


def pyrad_empty_password(server: RadiusServer) -> tuple[str, dict[str, str]]:
    """An Access-Request whose User-Password is empty (16 NUL octets once hidden): radclient leaves such an
    attribute out, so pyrad's client sends this one, as a NAS with first_factor = "none" would."""
    with pyrad_client(server, timeout=5) as client:
        reply = pyrad_login(client, "alice", b"")
    kinds = {packet.AccessAccept: "Access-Accept", packet.AccessReject: "Access-Reject",
             packet.AccessChallenge: "Access-Challenge"}
    attrs = {"State": "0x" + reply["State"][0].hex()} if "State" in reply else {}
    if "Reply-Message" in reply:
        attrs["Reply-Message"] = reply["Reply-Message"][0]
    return kinds[reply.code], attrs


def test_challenge_with_the_code_from_the_mail(radiusd: Callable[..., RadiusServer],
                                               smtp_server: Callable[..., Mailbox]) -> None:
    mail = smtp_server()
    server = radiusd(smtp_table(mail.port))
    add_token(server, "email")
    server.start()
    kind, reply = radclient(server, "s3cret")
    assert kind == "Access-Challenge", reply
    assert "e-mail" in reply["Reply-Message"] and reply["State"].startswith("0x")
    code, state = mail.last_code(6), reply["State"]
    kind, reply = radclient(server, code, state=state)
    assert kind == "Access-Accept", reply
    # the same State and code again (a new request, not a retransmission): refused, and so is the code alone
    assert radclient(server, code, state=state)[0] == "Access-Reject"
    assert radclient(server, "s3cret" + code)[0] == "Access-Reject"
    assert re.findall(r"result=(\w+) reason=(\w+)", server.log()) == [
        ("challenge", "challenge"), ("accept", "ok"), ("reject", "replay"), ("reject", "replay")]


def test_challenge_with_the_code_from_the_sms_gateway_and_no_password(radiusd: Callable[..., RadiusServer],
                                                                      sms_gateway: SmsGateway) -> None:
    server = radiusd(sms_table(sms_gateway.url), first_factor="none")
    add_token(server, "sms")
    server.start()
    kind, reply = pyrad_empty_password(server)
    assert kind == "Access-Challenge", reply
    code = sms_gateway.requests[-1].json()["text"].split()[-1]
    wrong = "000000" if code != "000000" else "111111"
    kind, retry = radclient(server, wrong, state=reply["State"])
    assert kind == "Access-Challenge" and "try again" in retry["Reply-Message"]
    assert radclient(server, code, state=retry["State"])[0] == "Access-Accept"


def test_silent_mail_server_gives_a_reject_within_3_seconds(radiusd: Callable[..., RadiusServer],
                                                            silent_port: int) -> None:
    server = radiusd(smtp_table(silent_port, timeout=2.0))
    add_token(server, "email")
    server.start()
    started = time.monotonic()
    kind, reply = radclient(server, "s3cret", timeout=3)
    assert time.monotonic() - started < 3.0
    assert kind == "Access-Reject" and reply["Reply-Message"] == '"The code could not be sent, try again later"'
    # the server is still up and answering
    assert radclient(server, "wrong")[0] == "Access-Reject"
