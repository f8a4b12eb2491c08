"""Helpers for the RADIUS door tests: a real otp-radiusd on a free loopback port, real clients, oathtool codes."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyrad import packet as rpacket

from otpbase.radius import ACCESS_REQUEST
from otpbase.radius.authenticators import authenticator_ok, hmac_md5, message_authenticator_ok
from otpbase.radius.pap import pap_hide
from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import load_config
from otpcore.oath import encode_base32
from radiusd.dictionary import load_dictionary

BIN = Path(sys.executable).parent
SECRET = b"testing123"
READY_TIMEOUT = 15.0
ANSWER_TIMEOUT = 10.0  # generous: other suites may load the machine; an answer returns at once anyway
SILENCE_TIMEOUT = 0.5  # how long "no answer" is waited for


def tool(name: str) -> str:
    """A program the tests drive for real; missing is a failure (install it: ./dev test does)."""
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert path, f"{name} is required for the RADIUS tests (Debian: freeradius-utils, oathtool; ./dev test)"
    return path


def free_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def totp(secret_b32: str, at: float | None = None, digits: int = 6) -> str:
    """The code oathtool computes for `at` (default: now)."""
    when = int(time.time() if at is None else at)
    out = subprocess.run([tool("oathtool"), "--totp", "-d", str(digits), "-b", secret_b32, "-N", f"@{when}"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def fresh_code(secret_b32: str, period: int = 30) -> str:
    """A code of the current step, safe from the step changing under the test (window = 1 covers the neighbours)."""
    return totp(secret_b32, time.time())


# -- raw RADIUS client ------------------------------------------------------------------------------------------------


@dataclass
class Sent:
    raw: bytes
    id: int
    authenticator: bytes
    secret: bytes
    proxy_state: tuple[bytes, ...] = ()


def build_request(user: str | bytes | None, password: bytes | None, *, secret: bytes = SECRET, ident: int | None = None,
                  state: bytes | None = None, ma: bool = True, proxy_state: Sequence[bytes] = (),
                  code: int = ACCESS_REQUEST, extra: Sequence[tuple[int, bytes]] = ()) -> Sent:
    """An Access-Request (or Status-Server) built by hand, so tests control every octet (with the codec's PAP hiding
    and HMAC-MD5)."""
    ident = os.urandom(1)[0] if ident is None else ident
    authenticator = os.urandom(16)
    attrs = b""
    if ma:
        attrs += bytes([80, 18]) + bytes(16)
    if user is not None:
        u = user.encode() if isinstance(user, str) else user
        attrs += bytes([1, 2 + len(u)]) + u
    if password is not None:
        hidden = pap_hide(password, secret, authenticator)
        attrs += bytes([2, 2 + len(hidden)]) + hidden
    if state is not None:
        attrs += bytes([24, 2 + len(state)]) + state
    attrs += bytes([4, 6]) + bytes([127, 0, 0, 1])  # NAS-IP-Address
    for t, v in extra:
        attrs += bytes([t, 2 + len(v)]) + v
    for ps in proxy_state:
        attrs += bytes([33, 2 + len(ps)]) + ps
    header = bytes([code, ident]) + (20 + len(attrs)).to_bytes(2, "big")
    raw = header + authenticator + attrs
    if ma:
        raw = raw[:22] + hmac_md5(secret, raw) + raw[38:]
    return Sent(raw, ident, authenticator, secret, tuple(proxy_state))


def sign_request(raw: bytes, secret: bytes) -> bytes:
    """Recompute the Message-Authenticator of a request whose first attribute is one."""
    return raw[:22] + hmac_md5(secret, raw[:22] + bytes(16) + raw[38:]) + raw[38:]


@dataclass
class Reply:
    raw: bytes
    code: int
    attrs: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, number: int) -> list[bytes]:
        return [v for t, v in self.attrs if t == number]

    @property
    def message(self) -> str:
        return b"".join(self.get(18)).decode()

    @property
    def state(self) -> bytes | None:
        values = self.get(24)
        return values[0] if values else None


def parse_reply(raw: bytes) -> Reply:
    attrs = []
    pos = 20
    while pos < len(raw):
        t, n = raw[pos], raw[pos + 1]
        attrs.append((t, raw[pos + 2:pos + n]))
        pos += n
    return Reply(raw, raw[0], attrs)


def check_reply(sent: Sent, raw: bytes) -> Reply:
    """Assert the reply is authentic: ID, Response Authenticator, and a valid Message-Authenticator first."""
    assert raw[1] == sent.id
    assert int.from_bytes(raw[2:4], "big") == len(raw)
    assert authenticator_ok(raw, sent.authenticator, sent.secret), "bad Response Authenticator"
    assert raw[20] == 80 and raw[21] == 18, "Message-Authenticator is not the first attribute"
    assert message_authenticator_ok(raw, 20, sent.secret, sent.authenticator), "bad Message-Authenticator"
    reply = parse_reply(raw)
    assert tuple(reply.get(33)) == sent.proxy_state, "Proxy-State not echoed unchanged and in order"
    return reply


class UdpClient:
    """One UDP socket bound to a loopback source address (127.0.0.1, 127.0.0.2, ... pick the client)."""

    def __init__(self, server: tuple[str, int], source: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in source else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.server = server

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, raw: bytes) -> None:
        self.sock.sendto(raw, self.server)

    def receive(self, timeout: float = ANSWER_TIMEOUT) -> bytes | None:
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(8192)
        except TimeoutError:
            return None
        return data

    def exchange(self, sent: Sent, timeout: float = ANSWER_TIMEOUT) -> bytes | None:
        self.send(sent.raw)
        while True:
            data = self.receive(timeout)
            if data is None or data[1] == sent.id:
                return data

    def ask(self, sent: Sent, timeout: float = ANSWER_TIMEOUT) -> Reply:
        raw = self.exchange(sent, timeout)
        assert raw is not None, "no answer"
        return check_reply(sent, raw)


# -- a real server ----------------------------------------------------------------------------------------------------


@dataclass
class Client:
    name: str
    address: str
    secret: str = SECRET.decode()
    first_factor: str = "store"
    require_message_authenticator: bool = True


@dataclass
class User:
    name: str
    password: str | None
    secret_b32: str

    def code(self, at: float | None = None) -> str:
        return totp(self.secret_b32, at)


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


class RadiusServer:
    def __init__(self, tmp: Path, *, clients: Sequence[Client], policy: dict[str, object] | None = None,
                 workers: int = 1, listen: Sequence[str] | None = None) -> None:
        self.dir = tmp
        self.port = free_udp_port()
        self.listen = list(listen) if listen else [f"127.0.0.1:{self.port}"]
        self.accounting_port = free_udp_port()  # never the shared default 1813
        self.clients = list(clients)
        self.policy = {"max_failures": 3, "lockout_seconds": 0, **(policy or {})}
        self.workers = workers
        self.config_path = tmp / "otp.toml"
        self.log_path = tmp / "radiusd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_config()
        config = load_config(self.config_path)
        with Admin(config) as admin:
            admin.init()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def write_config(self) -> None:
        lines = [
            "[store]", 'path = "otp.sqlite"', 'key_file = "otp.key"', "",
            "[radius]", f"listen = {_toml_list(self.listen)}", f"workers = {self.workers}",
            f'accounting_listen = ["127.0.0.1:{self.accounting_port}"]', "",
        ]
        for c in self.clients:
            lines += [
                "[[radius.clients]]", f'name = "{c.name}"', f'address = "{c.address}"', f'secret = "{c.secret}"',
                f'first_factor = "{c.first_factor}"',
                f"require_message_authenticator = {str(c.require_message_authenticator).lower()}", "",
            ]
        lines.append("[policy]")
        for k, v in self.policy.items():
            lines.append(f"{k} = " + (f'"{v}"' if isinstance(v, str) else str(v).lower()))
        self.config_path.write_text("\n".join(lines) + "\n")

    def add_user(self, name: str, password: str | None = "pw", *, digits: int = 6) -> User:
        secret = os.urandom(20)
        config = load_config(self.config_path)
        with Admin(config) as admin:
            admin.add_user(UserSpec(name, password=password.encode() if password else None), now=time.time())
            admin.add_token(name, TokenSpec(type="totp", secret=secret, digits=digits), now=time.time())
        return User(name, password, encode_base32(secret))

    def start(self) -> RadiusServer:
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([tool("otp-radiusd"), "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=self._log_file)
        self.wait_log(r"ready: listening", count=self.workers)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._log_file.close()
        return rc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, *, count: int = 1, timeout: float = READY_TIMEOUT) -> list[re.Match[str]]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            found = list(regex.finditer(self.log()))
            if len(found) >= count:
                return found
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"otp-radiusd exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {pattern!r} in the log:\n{self.log()}")
            time.sleep(0.02)

    def counters(self) -> dict[str, int]:
        """SIGUSR1 makes every worker log its counters; returns their sums."""
        assert self.proc is not None
        before = len(re.findall(r"counters", self.log()))
        self.proc.send_signal(signal.SIGUSR1)
        lines = self.wait_log(r"counters[^:]*: (.*)", count=before + self.workers)[before:]
        total: dict[str, int] = {}
        for m in lines:
            for item in m.group(1).split():
                k, _, v = item.partition("=")
                total[k] = total.get(k, 0) + int(v)
        return total

    def decisions(self, user: str) -> list[dict[str, str]]:
        out = []
        for line in self.log().splitlines():
            if f"decision user={user} " in line:
                out.append(dict(item.split("=", 1) for item in line.split("decision ", 1)[1].split() if "=" in item))
        return out

    def otp_admin(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool("otp-admin"), "--config", str(self.config_path), *args], input=stdin,
                              capture_output=True, text=True, timeout=30)

    def rss_kib(self) -> int:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


@contextlib.contextmanager
def pyrad_client(server: RadiusServer, secret: bytes = SECRET) -> Iterator[Any]:
    """pyrad's own client, as a NAS would use it (replies verified, Message-Authenticator enforced)."""
    from pyrad.client import Client as PyradClient

    client = PyradClient(server="127.0.0.1", authport=server.port, secret=secret, dict=load_dictionary(),
                         enforce_ma=True, retries=1, timeout=ANSWER_TIMEOUT)
    try:
        yield client
    finally:
        client._CloseSocket()


def pyrad_login(client: Any, user: str, password: bytes, state: bytes | None = None) -> rpacket.Packet:
    req = client.CreateAuthPacket(code=rpacket.AccessRequest, User_Name=user)
    req["User-Password"] = req.PwCrypt(password)
    if state is not None:
        req["State"] = state
    req.add_message_authenticator()
    return client.SendPacket(req)
