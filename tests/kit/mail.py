"""A real SMTP server (aiosmtpd) on a free loopback port: what it received, and the [delivery.smtp] table that points a
config at it. Plain, STARTTLS with AUTH required, or implicit TLS with AUTH (with `Certs` from a test CA)."""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from .ports import free_tcp_port

__all__ = ["SMTP_PASSWORD", "SMTP_USER", "Certs", "Mailbox", "smtp_table", "start_smtp"]

SMTP_USER = "mailer"
SMTP_PASSWORD = "mail-secret"


@dataclass(frozen=True)
class Certs:
    ca: Path  # what a client trusts
    cert: Path  # the server's, issued by the CA for localhost / 127.0.0.1
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


@dataclass
class Mailbox:
    """What the SMTP server received."""

    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content))
        implicit = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        self.tls.append(session.ssl is not None or implicit)
        self.arrived.set()
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
                     ) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
              and auth_data.password == SMTP_PASSWORD.encode())
        if ok:
            self.logins.append(SMTP_USER)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    def last_body(self) -> str:
        assert self.messages, "no mail arrived"
        payload = self.messages[-1].get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode().replace("\r\n", "\n")

    def last_code(self, length: int | None = None) -> str:
        """The code in the last mail: the last word of its first line ("Your one-time code is X")."""
        code = self.last_body().splitlines()[0].split()[-1]
        if length is not None:
            assert len(code) == length, code
        return code

    def wait(self, count: int, timeout: float = 10) -> None:
        """Until `count` mails have arrived in all."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} mail(s) arrived, not {count}"
            time.sleep(0.02)

    def matching(self, pattern: str) -> str:
        """The first match of `pattern` in the last mail's body."""
        match = re.search(pattern, self.last_body())
        assert match, self.last_body()
        return match.group(0)


def start_smtp(mode: str = "plain", certs: Certs | None = None) -> tuple[Mailbox, Controller]:
    """aiosmtpd, started: (what it receives, its controller to stop)."""
    box = Mailbox(free_tcp_port())
    kwargs: dict[str, Any] = {}
    if mode == "starttls":
        assert certs is not None
        kwargs = {"tls_context": certs.server_context(), "require_starttls": True,
                  "authenticator": box.authenticate, "auth_required": True}
    elif mode == "ssl":
        assert certs is not None
        # aiosmtpd advertises AUTH only after its own STARTTLS unless told that this socket is TLS already
        # (auth_required would then warn, and warnings are errors here: the test checks the login instead)
        kwargs = {"ssl_context": certs.server_context(), "authenticator": box.authenticate,
                  "auth_require_tls": False}
    controller = Controller(box, hostname="127.0.0.1", port=box.port, **kwargs)
    controller.start()
    return box, controller


def smtp_table(port: int, **extra: Any) -> str:
    values = {"host": "127.0.0.1", "port": port, "from": "otp@example.org", "timeout": 1.0, **extra}
    lines = ["[delivery.smtp]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"
