"""Fixtures of the email/sms code suite (the real SMTP server, aiosmtpd, is the kit's `smtp_server`): a local HTTP
server standing in for the SMS provider, servers that refuse or never answer, and installations whose config points at
them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from otpcore.admin import Admin, TokenSpec, UserSpec
from otpcore.config import Config, load_config
from otpcore.service import Verifier
from tests.kit.certs import make_ca
from tests.kit.config import config_text
from tests.kit.mail import SMTP_PASSWORD, SMTP_USER, Certs, Mailbox, smtp_table
from tests.kit.netfaults import closed_port as refusing_port
from tests.kit.netfaults import silent_server

__all__ = ["SMTP_PASSWORD", "SMTP_USER", "Certs", "Mailbox", "smtp_table"]  # the kit's, as this suite names them

SMS_TOKEN = "gateway-token-123"


# -- TLS ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("tls")
    ca = make_ca("otp-server test mail and SMS CA")
    paths = Certs(ca.write_cert(folder / "ca.pem"), folder / "cert.pem", folder / "key.pem")
    ca.issue_server().write(paths.cert, paths.key)
    return paths


# -- servers that refuse or never answer ------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on: connections are refused."""
    with refusing_port() as port:
        yield port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never says a word."""
    with silent_server() as port:
        yield port


# -- the SMS provider -------------------------------------------------------------------------------------------------


@dataclass
class SmsRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class SmsGateway:
    port: int
    requests: list[SmsRequest] = field(default_factory=list)
    status: int = 200
    reason: str | None = None  # the status line's reason phrase (None: the standard one)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    """A local HTTP server standing in for the SMS provider; records every request, answers `status`."""
    gateway = SmsGateway(0)

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            gateway.requests.append(SmsRequest(self.command, self.path, dict(self.headers.items()), body))
            self.send_response(gateway.status, gateway.reason)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_POST = do_GET = do_PUT = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    gateway.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield gateway
    server.shutdown()
    server.server_close()


# -- installations ----------------------------------------------------------------------------------------------------


@dataclass
class Site:
    """A config file, store and key in a temporary folder, with the delivery tables the test wrote."""

    folder: Path
    config: Config
    verifiers: list[Verifier] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        assert self.config.path is not None
        return self.config.path

    def add_user(self, name: str = "alice", password: bytes | None = b"s3cret", **contact: str) -> None:
        with Admin(self.config) as admin:
            admin.add_user(UserSpec(name, password=password, **contact), now=0)

    def add_token(self, user: str = "alice", type: str = "email", **spec: Any) -> int:
        with Admin(self.config) as admin:
            return admin.add_token(user, TokenSpec(type=type, **spec), now=0).id

    def verifier(self) -> Verifier:
        v = Verifier.open(self.config)
        self.verifiers.append(v)
        return v

    def audit(self, user: str = "alice") -> list[tuple[str, str]]:
        with Admin(self.config) as admin:
            return [(r.result, r.reason) for r in admin.store.audit_rows(user=user) if r.door != "admin"]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """make_site(delivery_toml, **policy): an initialised installation whose config has these extra tables."""
    sites: list[Site] = []

    def make(delivery: str = "", **policy: Any) -> Site:
        folder = tmp_path / f"site{len(sites)}"
        folder.mkdir()
        path = folder / "otp.toml"
        path.write_text(config_text(policy=policy, extra=delivery))
        config = load_config(path)
        with Admin(config) as admin:
            admin.init()
        made = Site(folder, config)
        sites.append(made)
        return made

    yield make
    for made in sites:
        for v in made.verifiers:
            v.close()


def sms_table(url: str, **extra: Any) -> str:
    lines = ["[delivery.sms]"]
    for k, v in {"url": url, "timeout": 1.0, **extra}.items():
        if isinstance(v, dict):
            lines.append(f"{k} = {{ " + ", ".join(f"{json.dumps(a)} = {json.dumps(b)}" for a, b in v.items()) + " }")
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"
