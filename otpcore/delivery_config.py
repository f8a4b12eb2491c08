"""The [delivery.smtp] and [delivery.sms] tables: how email and sms codes leave the server.

Checked once at load time like the rest of the configuration (a bad key raises ConfigError naming it). This module
only describes the settings; otpcore.delivery does the sending (and is the only module that imports smtplib/http).

Templates use `{name}` placeholders; other braces are left alone, so a JSON body can be written as it is:
  {code} the code · {user} the user name · {minutes} / {seconds} its validity · {phone} the phone number
  {message} the rendered sms `text` · {token} the gateway's auth token (from token_file)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tomlkeys as keys
from .errors import ConfigError

__all__ = ["DEFAULT_TIMEOUT", "PLACEHOLDER", "DeliveryConfig", "SmsConfig", "SmtpConfig", "parse_delivery",
           "placeholders"]

DEFAULT_TIMEOUT = 2.0  # seconds: a RADIUS client usually waits 3 s for an answer, and the code is sent before it
MAX_TIMEOUT = 30.0
HTTP_METHODS = ("POST", "GET", "PUT")
PLACEHOLDER = re.compile(r"\{(code|user|minutes|seconds|phone|message|token)\}")


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False  # STARTTLS after connecting (submission, port 587)
    ssl: bool = False  # TLS from the first byte (port 465)
    tls_verify: bool = True  # check the server's certificate and name
    ca_file: Path | None = None  # trust these CAs instead of the system's
    sender: str = "otp@localhost"  # the `from` key
    subject: str = "Your one-time code"
    body: str = "Your one-time code is {code}\nIt is valid for {minutes} minutes.\n"
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class SmsConfig:
    # Either an HTTP gateway (url) ...
    url: str | None = None
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    body: str = '{"to": "{phone}", "text": "{message}"}'
    token: str | None = field(default=None, repr=False)  # read from token_file
    tls_verify: bool = True
    ca_file: Path | None = None
    # ... or an e-mail-to-SMS gateway: mail to {phone}@email_domain through [delivery.smtp].
    email_domain: str | None = None
    text: str = "Your one-time code is {code}"
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class DeliveryConfig:
    smtp: SmtpConfig | None = None  # None: no [delivery.smtp] table, email codes cannot be sent
    sms: SmsConfig | None = None  # None: no [delivery.sms] table, sms codes cannot be sent

    def missing_table(self, channel: str) -> str | None:
        """The table codes of `channel` ("email" or "sms") cannot be sent without, if it is missing."""
        if channel == "sms":
            return "[delivery.sms]" if self.sms is None else None  # its email_domain needs smtp: checked at load
        return "[delivery.smtp]" if self.smtp is None else None


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def parse_delivery(t: Mapping[str, Any], base: Path = Path(".")) -> DeliveryConfig:
    keys.known_keys(t, "delivery", ("smtp", "sms"))
    smtp = _parse_smtp(keys.subtable(t, "delivery", "smtp"), base) if "smtp" in t else None
    sms = _parse_sms(keys.subtable(t, "delivery", "sms"), base) if "sms" in t else None
    if sms is not None and sms.email_domain is not None and smtp is None:
        raise ConfigError("delivery.sms.email_domain: needs a [delivery.smtp] table to send through")
    return DeliveryConfig(smtp=smtp, sms=sms)


def _parse_smtp(t: Mapping[str, Any], base: Path) -> SmtpConfig:
    s = "delivery.smtp"
    keys.known_keys(t, s, {"host", "port", "username", "password", "password_file", "starttls", "ssl", "tls_verify",
                           "ca_file", "from", "subject", "body", "timeout"})
    d = SmtpConfig()
    starttls = keys.boolean(t, s, "starttls", d.starttls)
    implicit = keys.boolean(t, s, "ssl", d.ssl)
    if starttls and implicit:
        raise ConfigError(f"{s}.ssl: give at most one of starttls and ssl")
    port = keys.integer(t, s, "port", 465 if implicit else 587 if starttls else 25, minimum=1, maximum=65535)
    username = keys.optional_text(t, s, "username")
    password = _secret(t, s, "password", base)
    if password is not None and username is None:
        raise ConfigError(f"{s}.username: missing (a password is given)")
    if username is not None and password is None:
        raise ConfigError(f"{s}.password: missing (a username is given; or use password_file)")
    body = keys.text(t, s, "body", d.body)
    if "code" not in placeholders(body):
        raise ConfigError(f"{s}.body: must contain {{code}}")
    sender = keys.text(t, s, "from", d.sender)
    if "@" not in sender:
        raise ConfigError(f"{s}.from: not an e-mail address: {sender!r}")
    return SmtpConfig(
        host=keys.text(t, s, "host", d.host),
        port=port,
        username=username,
        password=password,
        starttls=starttls,
        ssl=implicit,
        tls_verify=keys.boolean(t, s, "tls_verify", d.tls_verify),
        ca_file=keys.optional_path(t, s, "ca_file", base),
        sender=sender,
        subject=keys.text(t, s, "subject", d.subject),
        body=body,
        timeout=_timeout(t, s),
    )


def _parse_sms(t: Mapping[str, Any], base: Path) -> SmsConfig:
    s = "delivery.sms"
    keys.known_keys(t, s, {"url", "method", "headers", "body", "token_file", "tls_verify", "ca_file", "email_domain",
                           "text", "timeout"})
    d = SmsConfig()
    url = keys.optional_text(t, s, "url")
    domain = keys.optional_text(t, s, "email_domain")
    if (url is None) == (domain is None):
        raise ConfigError(f"{s}.url: give exactly one of url (HTTP gateway) and email_domain (e-mail-to-SMS)")
    if url is not None and not re.match(r"https?://[^/?#]+", url):
        raise ConfigError(f"{s}.url: must be an http:// or https:// URL, not {url!r}")
    if domain is not None and (not domain or "@" in domain or any(c.isspace() for c in domain)):
        raise ConfigError(f"{s}.email_domain: not a domain: {domain!r}")
    method = keys.text(t, s, "method", d.method).upper()
    if method not in HTTP_METHODS:
        raise ConfigError(f"{s}.method: must be one of {', '.join(HTTP_METHODS)}")
    headers = t.get("headers", d.headers)
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f"{s}.headers: must be a table of strings")
    if any(c in str(k) + v for k, v in headers.items() for c in "\r\n"):
        raise ConfigError(f"{s}.headers: no line breaks allowed")
    text = keys.text(t, s, "text", d.text)
    if "code" not in placeholders(text):
        raise ConfigError(f"{s}.text: must contain {{code}}")
    body = keys.text(t, s, "body", d.body)
    if url is not None and "phone" not in placeholders(url + body):
        raise ConfigError(f"{s}.body: the url or the body must contain {{phone}}")
    if url is not None and not placeholders(url + body) & {"code", "message"}:
        raise ConfigError(f"{s}.body: the url or the body must contain {{code}} or {{message}}")
    token = _secret(t, s, "token", base)  # from token_file only: an inline `token` is an unknown key
    if token is not None and any(c in token for c in "\r\n"):
        raise ConfigError(f"{s}.token_file: must hold one line")
    return SmsConfig(url=url, method=method, headers=dict(headers), body=body, token=token,
                     tls_verify=keys.boolean(t, s, "tls_verify", d.tls_verify),
                     ca_file=keys.optional_path(t, s, "ca_file", base), email_domain=domain, text=text,
                     timeout=_timeout(t, s))


# -- keys of their own -------------------------------------------------------------------------------------------------


def _timeout(t: Mapping[str, Any], section: str) -> float:
    value = t.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT:
        raise ConfigError(f"{section}.timeout: must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}")
    return float(value)


def _secret(t: Mapping[str, Any], section: str, name: str, base: Path) -> str | None:
    """`name` inline, or `name_file` naming a file that holds it."""
    if name in t and f"{name}_file" in t:
        raise ConfigError(f"{section}.{name}: give at most one of {name} and {name}_file")
    path = keys.optional_path(t, section, f"{name}_file", base)
    if path is None:
        return keys.optional_text(t, section, name)
    try:
        value = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{section}.{name}_file: cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
                          ) from None
    if not value:
        raise ConfigError(f"{section}.{name}_file: {path} is empty")
    return value
