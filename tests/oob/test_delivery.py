"""otpcore.delivery against real servers: aiosmtpd (plain, STARTTLS + AUTH, implicit TLS + AUTH), a local HTTP SMS
gateway, an e-mail-to-SMS gateway, and servers that refuse or never answer."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otpcore.config import parse_config
from otpcore.delivery import Sender, render
from otpcore.errors import ConfigError, DeliveryError
from otpcore.oob import Outgoing

from .conftest import SMS_TOKEN, SMTP_PASSWORD, SMTP_USER, Certs, Mailbox, SmsGateway

EMAIL = Outgoing("email", "alice@example.org", "alice", "123456", 300)
SMS = Outgoing("sms", "+1 555-0100", "alice", "654321", 120)


def sender(delivery: dict[str, Any], base: Path = Path(".")) -> Sender:
    return Sender(parse_config({"delivery": delivery}, base=base).delivery)


def smtp(port: int, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "from": "otp@example.org", "timeout": 1.0, **extra}


# -- e-mail -----------------------------------------------------------------------------------------------------------


def test_plain_smtp_with_templates(smtp_server: Callable[..., Mailbox]) -> None:
    box = smtp_server()
    s = sender({"smtp": smtp(box.port, subject="Code for {user}",
                             body="Your one-time code is {code}\nValid {minutes} min ({seconds} s).\n")})
    s.send(EMAIL)
    assert box.envelopes == [("otp@example.org", ["alice@example.org"])]
    mail = box.messages[0]
    assert mail["Subject"] == "Code for alice"
    assert mail["From"] == "otp@example.org" and mail["To"] == "alice@example.org"
    assert box.last_body() == "Your one-time code is 123456\nValid 5 min (300 s).\n"
    assert box.tls == [False]


def test_starttls_with_auth_and_a_trusted_ca(smtp_server: Callable[..., Mailbox], certs: Certs) -> None:
    box = smtp_server("starttls", certs)
    s = sender({"smtp": smtp(box.port, starttls=True, username=SMTP_USER, password=SMTP_PASSWORD,
                             ca_file=str(certs.ca))})
    s.send(EMAIL)
    assert box.logins == [SMTP_USER]
    assert box.tls == [True]
    assert box.last_code() == "123456"


def test_implicit_tls_with_auth_and_password_file(smtp_server: Callable[..., Mailbox], certs: Certs,
                                                   tmp_path: Path) -> None:
    box = smtp_server("ssl", certs)
    (tmp_path / "smtp.pw").write_text(SMTP_PASSWORD + "\n")
    s = sender({"smtp": smtp(box.port, ssl=True, username=SMTP_USER, password_file="smtp.pw",
                             ca_file=str(certs.ca))}, base=tmp_path)
    s.send(EMAIL)
    assert box.logins == [SMTP_USER] and box.tls == [True]


def test_wrong_smtp_password_is_a_delivery_error(smtp_server: Callable[..., Mailbox], certs: Certs) -> None:
    box = smtp_server("starttls", certs)
    s = sender({"smtp": smtp(box.port, starttls=True, username=SMTP_USER, password="wrong",
                             ca_file=str(certs.ca))})
    with pytest.raises(DeliveryError, match="login refused"):
        s.send(EMAIL)
    assert box.messages == []


def test_untrusted_certificate_is_refused(smtp_server: Callable[..., Mailbox], certs: Certs) -> None:
    box = smtp_server("starttls", certs)
    with pytest.raises(DeliveryError, match="certificate not trusted"):
        sender({"smtp": smtp(box.port, starttls=True, username=SMTP_USER, password=SMTP_PASSWORD)}).send(EMAIL)
    # tls_verify = false accepts it (a test server, or a relay on localhost)
    sender({"smtp": smtp(box.port, starttls=True, username=SMTP_USER, password=SMTP_PASSWORD,
                         tls_verify=False)}).send(EMAIL)
    assert len(box.messages) == 1


def test_server_requiring_auth_refuses_anonymous_mail(smtp_server: Callable[..., Mailbox], certs: Certs) -> None:
    box = smtp_server("starttls", certs)
    with pytest.raises(DeliveryError, match=r"mail server 127\.0\.0\.1:\d+: 530"):
        sender({"smtp": smtp(box.port, starttls=True, ca_file=str(certs.ca))}).send(EMAIL)


def test_mail_server_down_or_silent_fails_fast(closed_port: int, silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="connection refused") as down:
        sender({"smtp": smtp(closed_port)}).send(EMAIL)
    assert "123456" not in str(down.value)
    with pytest.raises(DeliveryError, match="timed out"):
        sender({"smtp": smtp(silent_port, timeout=0.5)}).send(EMAIL)
    assert time.monotonic() - started < 2.5


def test_send_all_returns_errors_as_values_within_the_timeout(smtp_server: Callable[..., Mailbox],
                                                               silent_port: int) -> None:
    box = smtp_server()
    ok = sender({"smtp": smtp(box.port), "sms": {"email_domain": "sms.example.net"}})
    assert ok.send_all([EMAIL, SMS]) == [None, None]
    s = sender({"smtp": smtp(silent_port, timeout=0.5)})
    started = time.monotonic()
    errors = s.send_all([EMAIL, EMAIL])
    assert time.monotonic() - started < 1.5  # in parallel: one timeout, not two
    assert all(e is not None and "123456" not in e for e in errors)


# -- SMS --------------------------------------------------------------------------------------------------------------


def test_http_gateway_json_body_and_bearer_token(sms_gateway: SmsGateway, tmp_path: Path) -> None:
    (tmp_path / "sms.token").write_text(SMS_TOKEN + "\n")
    s = sender({"sms": {"url": sms_gateway.url, "token_file": "sms.token", "text": 'Code "{code}" for {user}'}},
               base=tmp_path)
    s.send(SMS)
    [request] = sms_gateway.requests
    assert request.method == "POST" and request.path == "/send"
    assert request.headers["Authorization"] == f"Bearer {SMS_TOKEN}"
    assert request.json() == {"to": "+1 555-0100", "text": 'Code "654321" for alice'}


def test_http_gateway_form_body_with_token_placeholder(sms_gateway: SmsGateway, tmp_path: Path) -> None:
    (tmp_path / "sms.token").write_text(SMS_TOKEN)
    s = sender({"sms": {"url": sms_gateway.url, "method": "PUT", "token_file": "sms.token",
                        "headers": {"Content-Type": "application/x-www-form-urlencoded", "X-Api-Key": "{token}"},
                        "body": "to={phone}&msg={message}&code={code}"}}, base=tmp_path)
    s.send(SMS)
    [request] = sms_gateway.requests
    assert request.method == "PUT"
    assert request.headers["X-Api-Key"] == SMS_TOKEN and "Authorization" not in request.headers
    form = urllib.parse.parse_qs(request.body.decode())
    assert form == {"to": ["+1 555-0100"], "msg": ["Your one-time code is 654321"], "code": ["654321"]}


def test_http_gateway_get_with_query(sms_gateway: SmsGateway) -> None:
    s = sender({"sms": {"url": sms_gateway.url + "?to={phone}&text={message}", "method": "GET"}})
    s.send(SMS)
    [request] = sms_gateway.requests
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
    assert request.method == "GET" and query == {"to": ["+1 555-0100"], "text": ["Your one-time code is 654321"]}


def test_http_gateway_error_status(sms_gateway: SmsGateway) -> None:
    sms_gateway.status = 503
    with pytest.raises(DeliveryError, match="answered 503"):
        sender({"sms": {"url": sms_gateway.url}}).send(SMS)


def test_http_gateway_reason_phrase_is_escaped(sms_gateway: SmsGateway) -> None:
    """The gateway's words go to the log: a control sequence in them arrives escaped, on one line."""
    sms_gateway.status, sms_gateway.reason = 503, "Busy\x1b[2J\\now"
    with pytest.raises(DeliveryError) as refused:
        sender({"sms": {"url": sms_gateway.url}}).send(SMS)
    assert str(refused.value).endswith("answered 503 Busy\\x1b[2J\\\\now")


def test_http_gateway_down_or_silent(closed_port: int, silent_port: int) -> None:
    with pytest.raises(DeliveryError, match="connection refused"):
        sender({"sms": {"url": f"http://127.0.0.1:{closed_port}/send"}}).send(SMS)
    started = time.monotonic()
    assert sender({"sms": {"url": f"http://127.0.0.1:{silent_port}/send", "timeout": 0.5}}).send_all([SMS]) != [None]
    assert time.monotonic() - started < 1.5


def test_email_to_sms_gateway(smtp_server: Callable[..., Mailbox]) -> None:
    box = smtp_server()
    s = sender({"smtp": smtp(box.port), "sms": {"email_domain": "sms.example.net"}})
    s.send(SMS)
    assert box.envelopes == [("otp@example.org", ["15550100@sms.example.net"])]
    assert box.last_body().strip() == "Your one-time code is 654321"


# -- configuration ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("delivery", "message"), [
    ({"smtp": {"hots": "x"}}, r"delivery\.smtp\.hots: unknown key"),
    ({"smtp": {"starttls": True, "ssl": True}}, "at most one of starttls and ssl"),
    ({"smtp": {"username": "u"}}, r"delivery\.smtp\.password: missing"),
    ({"smtp": {"body": "no code here"}}, r"delivery\.smtp\.body: must contain \{code\}"),
    ({"smtp": {"timeout": 0}}, r"delivery\.smtp\.timeout"),
    ({"smtp": {"from": "nobody"}}, r"delivery\.smtp\.from"),
    ({"sms": {}}, "exactly one of url"),
    ({"sms": {"url": "ftp://x"}}, r"delivery\.sms\.url"),
    ({"sms": {"url": "http://x/", "body": "{code}"}}, r"\{phone\}"),
    ({"sms": {"url": "http://x/", "method": "DELETE"}}, r"delivery\.sms\.method"),
    ({"sms": {"email_domain": "sms.example.net"}}, r"needs a \[delivery\.smtp\]"),
    ({"sms": {"url": "http://x/", "token_file": "/nonexistent/token"}}, r"delivery\.sms\.token_file: cannot read"),
    ({"fax": {}}, r"delivery\.fax: unknown key"),
])
def test_bad_delivery_config_names_the_key(delivery: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"delivery": delivery})


def test_smtp_port_follows_the_tls_mode() -> None:
    def port(**kw: Any) -> int:
        config = parse_config({"delivery": {"smtp": kw}}).delivery.smtp
        assert config is not None
        return config.port

    assert (port(), port(starttls=True), port(ssl=True)) == (25, 587, 465)


def test_render_leaves_other_braces_alone() -> None:
    assert render('{"a": "{code}", "b": {x}}', {"code": "12"}) == '{"a": "12", "b": {x}}'


def test_https_gateway_with_a_trusted_ca(certs: Certs) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = certs.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://localhost:{server.server_address[1]}/send"
        sender({"sms": {"url": url, "ca_file": str(certs.ca)}}).send(SMS)
        assert len(bodies) == 1 and b"654321" in bodies[0]
        with pytest.raises(DeliveryError, match="certificate not trusted"):
            sender({"sms": {"url": url}}).send(SMS)
    finally:
        server.shutdown()
        server.server_close()


def test_the_code_is_never_logged(smtp_server: Callable[..., Mailbox], sms_gateway: SmsGateway, closed_port: int,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    box = smtp_server()
    sms_gateway.status = 500
    good = sender({"smtp": smtp(box.port), "sms": {"url": sms_gateway.url}})
    bad = sender({"smtp": smtp(closed_port)})
    results = good.send_all([EMAIL, SMS]) + bad.send_all([EMAIL])
    assert results[0] is None and results[1] is not None and results[2] is not None
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("otpcore"))  # not aiosmtpd's
    assert "code sent: user=alice email to alice@example.org" in ours
    assert "answered 500" in ours and "connection refused" in ours
    assert "123456" not in ours and "654321" not in ours
    assert all("123456" not in r and "654321" not in r for r in results if r)
