"""Sending codes: e-mail over SMTP, SMS through an HTTP gateway or an e-mail-to-SMS gateway (`{phone}@domain`).

The only module of the core that touches the network. Every network call has a timeout, and `send_all` runs the
sends of one code in parallel threads and waits no longer than the longest channel timeout, so a mail server that
is down, or accepts and never answers, costs the caller a bounded time (a RADIUS client waits about 3 s).
`send` raises DeliveryError; `send_all` returns errors as values. Logs and errors never contain the code.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import re
import smtplib
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from otpbase.escape import escape as escape_text  # `escape` here is the placeholder escaping of render()

from .delivery_config import DEFAULT_TIMEOUT, PLACEHOLDER, DeliveryConfig, SmsConfig, SmtpConfig, placeholders
from .errors import DeliveryError
from .oob import Outgoing

__all__ = ["Sender", "render"]

log = logging.getLogger("otpcore.delivery")

_MAX_RESPONSE = 65_536


def render(template: str, values: Mapping[str, str], escape: Callable[[str], str] = str) -> str:
    """Replace the known `{name}` placeholders; leave every other brace alone (JSON bodies)."""
    return PLACEHOLDER.sub(lambda m: escape(values[m[1]]) if m[1] in values else m[0], template)


class Sender:
    """Sends codes as [delivery.smtp] and [delivery.sms] say. Thread-safe: it keeps no connection."""

    def __init__(self, config: DeliveryConfig) -> None:
        self.config = config

    # -- the service's entry point ------------------------------------------------------------------------------------

    def send_all(self, messages: Sequence[Outgoing]) -> list[str | None]:
        """Send every message in parallel; per message None (sent) or a one-line error. Bounded in time."""
        results: list[str | None] = ["not sent"] * len(messages)
        threads = []
        for i, message in enumerate(messages):
            thread = threading.Thread(target=self._send_into, args=(message, results, i), name="otp-delivery",
                                      daemon=True)
            thread.start()
            threads.append(thread)
        deadline = time.monotonic() + max((self.timeout(m.channel) for m in messages), default=0.0)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        out = list(results)
        for i, thread in enumerate(threads):
            if thread.is_alive():  # it will give up on its own socket timeout; we do not wait for it
                out[i] = f"{_what(messages[i])}: no answer within {self.timeout(messages[i].channel):g} s"
                log.warning("code not sent: user=%s %s", messages[i].user, out[i])
        return out

    def timeout(self, channel: str) -> float:
        """Seconds a send through `channel` may take, in all."""
        if channel == "sms" and self.config.sms is not None and self.config.sms.url is not None:
            return self.config.sms.timeout
        smtp = self.config.smtp
        # Not configured: the send fails at once, and is waited for like any other (with 0, its failure raced the
        # deadline and was reported twice, once as "no answer within 0 s").
        return smtp.timeout if smtp is not None else DEFAULT_TIMEOUT

    def send(self, message: Outgoing) -> None:
        """Send one code. Raises DeliveryError."""
        if message.channel == "email":
            self._email(message)
        elif message.channel == "sms":
            self._sms(message)
        else:
            raise DeliveryError(f"unknown delivery channel {message.channel!r}")

    def send_mail(self, to: str, subject: str, body: str) -> None:
        """A mail of the product's own (an enrolment code of `otp-admin user invite`) through [delivery.smtp]. Raises
        DeliveryError."""
        self._smtp_send(self._smtp("email"), to, subject, body)

    # -- channels -----------------------------------------------------------------------------------------------------

    def _send_into(self, message: Outgoing, results: list[str | None], index: int) -> None:
        started = time.monotonic()
        try:
            self.send(message)
        except DeliveryError as exc:
            results[index] = str(exc)
            log.warning("code not sent: user=%s %s", message.user, exc)
            return
        except Exception as exc:  # a bug must not take the door down: report it as a failed send
            results[index] = f"{_what(message)}: unexpected {type(exc).__name__}"
            log.exception("code not sent: user=%s %s", message.user, results[index])
            return
        results[index] = None
        log.info("code sent: user=%s %s in %.2f s", message.user, _what(message), time.monotonic() - started)

    def _email(self, message: Outgoing) -> None:
        smtp = self._smtp("email")
        values = _values(message)
        self._smtp_send(smtp, message.address, render(smtp.subject, values), render(smtp.body, values))

    def _sms(self, message: Outgoing) -> None:
        sms = self.config.sms
        if sms is None:
            raise DeliveryError("sms: no [delivery.sms] in the configuration")
        values = _values(message)
        values["message"] = render(sms.text, values)
        if sms.email_domain is not None:
            address = message.address if "@" in message.address else (
                re.sub(r"\D", "", message.address) + "@" + sms.email_domain)
            self._smtp_send(self._smtp("sms"), address, None, values["message"])
        else:
            self._http(sms, values)

    # -- SMTP ---------------------------------------------------------------------------------------------------------

    def _smtp(self, channel: str) -> SmtpConfig:
        if self.config.smtp is None:
            raise DeliveryError(f"{channel}: no [delivery.smtp] in the configuration")
        return self.config.smtp

    def _smtp_send(self, smtp: SmtpConfig, to: str, subject: str | None, body: str) -> None:
        where = f"mail server {smtp.host}:{smtp.port}"
        try:
            mail = EmailMessage()
            mail["From"] = smtp.sender
            mail["To"] = to
            if subject:
                mail["Subject"] = subject
            mail["Date"] = formatdate(localtime=True)
            mail["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
            mail["Auto-Submitted"] = "auto-generated"
            mail.set_content(body)
        except (ValueError, TypeError) as exc:
            raise DeliveryError(f"bad e-mail address or header for {to!r}: {exc}") from None
        context = _tls_context(smtp.tls_verify, smtp.ca_file) if smtp.ssl or smtp.starttls else None
        client: smtplib.SMTP | None = None
        try:
            if smtp.ssl:
                client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
            client.ehlo()
            if smtp.starttls:
                client.starttls(context=context)
                client.ehlo()
            if smtp.username is not None and smtp.password is not None:
                client.login(smtp.username, smtp.password)
            client.send_message(mail)
            _quietly_quit(client)
            client = None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{where}: login refused ({exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError(f"{where}: recipient {to} refused") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{where}: {exc.smtp_code} {_printable(exc.smtp_error)}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{where}: {_describe(exc)}") from None
        finally:
            if client is not None:
                client.close()

    # -- HTTP gateway -------------------------------------------------------------------------------------------------

    def _http(self, sms: SmsConfig, values: dict[str, str]) -> None:
        assert sms.url is not None
        headers = {k: render(v, values) for k, v in sms.headers.items()}
        if sms.token is not None:
            values["token"] = sms.token
            headers = {k: render(v, values) for k, v in sms.headers.items()}
            used = placeholders(sms.url + sms.body + "".join(sms.headers.values()))
            if "token" not in used:
                headers["Authorization"] = f"Bearer {sms.token}"
        url = urllib.parse.urlsplit(render(sms.url, values, lambda v: urllib.parse.quote(v, safe="")))
        where = f"SMS gateway {url.hostname}"
        body: bytes | None = None
        if sms.method != "GET":
            content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "").lower()
            escape: Callable[[str], str] = str
            if "json" in content_type:
                escape = _json_escape
            elif "x-www-form-urlencoded" in content_type:
                escape = urllib.parse.quote_plus
            body = render(sms.body, values, escape).encode()
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        conn: http.client.HTTPConnection
        try:
            if url.scheme == "https":
                conn = http.client.HTTPSConnection(url.hostname or "", url.port, timeout=sms.timeout,
                                                   context=_tls_context(sms.tls_verify, sms.ca_file))
            else:
                conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=sms.timeout)
        except ValueError as exc:
            raise DeliveryError(f"{where}: bad URL: {exc}") from None
        try:
            conn.request(sms.method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read(_MAX_RESPONSE)
            status, reason = response.status, response.reason
        except (http.client.HTTPException, OSError, ValueError) as exc:
            raise DeliveryError(f"{where}: {_describe(exc)}") from None
        finally:
            conn.close()
        if not 200 <= status < 300:
            raise DeliveryError(f"{where}: answered {status} {_printable(reason)}")


# -- helpers ----------------------------------------------------------------------------------------------------------


def _values(message: Outgoing) -> dict[str, str]:
    return {"code": message.code, "user": message.user, "seconds": str(message.validity),
            "minutes": str(max(1, math.ceil(message.validity / 60))), "phone": message.address}


def _what(message: Outgoing) -> str:
    return f"{message.channel} to {message.address}"


def _json_escape(value: str) -> str:
    return json.dumps(value)[1:-1]


def _tls_context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({exc.verify_message})"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return _printable(text)


def _printable(text: bytes | str | None) -> str:
    """What a mail server or gateway said, as a log line may hold it (cut first, so no escape is cut in half)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return escape_text((text or "").strip()[:200])


def _quietly_quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
