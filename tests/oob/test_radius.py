"""The RADIUS door with email/sms tokens: a real otp-radiusd, radclient as the NAS, the code arriving in aiosmtpd or
in the local SMS gateway."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import load_config

from .conftest import Mailbox, SmsGateway, sms_table, smtp_table

BIN = Path(sys.executable).parent
SECRET = "testing123"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Radiusd:
    """otp-radiusd --config on free loopback ports, with one client (127.0.0.1) and the given delivery tables."""

    def __init__(self, folder: Path, delivery: str, first_factor: str = "store") -> None:
        self.folder = folder
        self.port = free_udp_port()
        self.config_path = folder / "otp.toml"
        self.config_path.write_text(f"""
[store]
path = "otp.sqlite"
key_file = "otp.key"

[radius]
listen = ["127.0.0.1:{self.port}"]
accounting_listen = ["127.0.0.1:{free_udp_port()}"]

[[radius.clients]]
name = "nas"
address = "127.0.0.1"
secret = "{SECRET}"
first_factor = "{first_factor}"

[policy]
oob_resend_interval = 0

{delivery}
""")
        self.config = load_config(self.config_path)
        with Admin(self.config) as admin:
            admin.init()
            admin.add_user(UserSpec("alice", email="alice@example.org", phone="+15550100", password=b"s3cret"),
                           now=time.time())
        self.log_path = folder / "radiusd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def add_token(self, type: str) -> None:
        with Admin(self.config) as admin:
            admin.add_token("alice", TokenSpec(type=type), now=time.time())

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(BIN / "otp-radiusd"), "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 15
        while "ready: listening" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"otp-radiusd did not start:\n{self.log()}")
            time.sleep(0.02)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def radiusd(tmp_path: Path) -> Iterator[Callable[..., Radiusd]]:
    servers: list[Radiusd] = []

    def make(delivery: str, first_factor: str = "store") -> Radiusd:
        folder = tmp_path / f"radiusd{len(servers)}"
        folder.mkdir()
        server = Radiusd(folder, delivery, first_factor)
        servers.append(server)
        return server

    yield make
    for server in servers:
        if server.proc is not None:
            assert server.stop() == 0, server.log()


def radclient(server: Radiusd, password: str, state: str | None = None, timeout: int = 3
              ) -> tuple[str, dict[str, str]]:
    """One Access-Request by FreeRADIUS's radclient; returns the reply's type and attributes."""
    path = shutil.which("radclient")
    assert path, "radclient is required (Debian: freeradius-utils; ./dev test installs it)"
    attrs = ['User-Name = "alice"', f'User-Password = "{password}"', "Message-Authenticator = 0x00"]
    if state is not None:
        attrs.append(f"State = {state}")
    out = subprocess.run([path, "-x", "-r", "1", "-t", str(timeout), f"127.0.0.1:{server.port}", "auth", SECRET],
                         input="\n".join(attrs) + "\n", capture_output=True, text=True, timeout=timeout + 10)
    kind = re.search(r"Received (Access-\w+)", out.stdout)
    assert kind, f"no answer from otp-radiusd: {out.stdout}{out.stderr}\n{server.log()}"
    reply = dict(re.findall(r"^\s+([\w-]+) = (.*)$", out.stdout.split("Received", 1)[1], re.MULTILINE))
    return kind.group(1), reply


def pyrad_empty_password(server: Radiusd) -> tuple[str, dict[str, str]]:
    """An Access-Request whose User-Password is empty (16 NUL octets once hidden): radclient leaves such an
    attribute out, so pyrad's client sends this one, as a NAS with first_factor = "none" would."""
    from pyrad import packet
    from pyrad.client import Client

    from radiusd.dictionary import load_dictionary

    client = Client(server="127.0.0.1", authport=server.port, secret=SECRET.encode(), dict=load_dictionary(),
                    enforce_ma=True, retries=1, timeout=5)
    try:
        request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name="alice")
        request["User-Password"] = request.PwCrypt(b"")
        request.add_message_authenticator()
        reply = client.SendPacket(request)
    finally:
        client._CloseSocket()
    kinds = {packet.AccessAccept: "Access-Accept", packet.AccessReject: "Access-Reject",
             packet.AccessChallenge: "Access-Challenge"}
    attrs = {"State": "0x" + reply["State"][0].hex()} if "State" in reply else {}
    if "Reply-Message" in reply:
        attrs["Reply-Message"] = reply["Reply-Message"][0]
    return kinds[reply.code], attrs


def test_challenge_with_the_code_from_the_mail(radiusd: Callable[..., Radiusd],
                                               smtp_server: Callable[..., Mailbox]) -> None:
    mail = smtp_server()
    server = radiusd(smtp_table(mail.port))
    server.add_token("email")
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


def test_challenge_with_the_code_from_the_sms_gateway_and_no_password(radiusd: Callable[..., Radiusd],
                                                                      sms_gateway: SmsGateway) -> None:
    server = radiusd(sms_table(sms_gateway.url), first_factor="none")
    server.add_token("sms")
    server.start()
    kind, reply = pyrad_empty_password(server)
    assert kind == "Access-Challenge", reply
    code = sms_gateway.requests[-1].json()["text"].split()[-1]
    wrong = "000000" if code != "000000" else "111111"
    kind, retry = radclient(server, wrong, state=reply["State"])
    assert kind == "Access-Challenge" and "try again" in retry["Reply-Message"]
    assert radclient(server, code, state=retry["State"])[0] == "Access-Accept"


def test_silent_mail_server_gives_a_reject_within_3_seconds(radiusd: Callable[..., Radiusd],
                                                            silent_port: int) -> None:
    server = radiusd(smtp_table(silent_port, timeout=2.0))
    server.add_token("email")
    server.start()
    started = time.monotonic()
    kind, reply = radclient(server, "s3cret", timeout=3)
    assert time.monotonic() - started < 3.0
    assert kind == "Access-Reject" and reply["Reply-Message"] == '"The code could not be sent, try again later"'
    # the server is still up and answering
    assert radclient(server, "wrong")[0] == "Access-Reject"
