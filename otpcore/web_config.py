"""The [web] table and its [[web.apps]]: the HTTP door (otp-web), its validate API's callers and its self-service
portal. Checked at load time like every other key; the web stack itself is imported only by otpweb."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from otpbase.hostport import parse_hostport

from . import tomlkeys as keys
from .errors import ConfigError

__all__ = ["ENROLLMENT_MODES", "ENROLLMENT_TYPES", "WebApp", "WebConfig", "parse_web"]

ENROLLMENT_MODES = ("open", "invite", "off")
ENROLLMENT_TYPES = ("totp", "hotp", "email", "sms")
_KEYS = {"listen", "tls_cert", "tls_key", "behind_proxy", "public_url", "self_enrollment", "enrollment_types",
         "first_factor", "issuer", "qr_scale", "session_seconds", "invite_hours", "apps"}
_APP_KEYS = {"name", "key", "key_file", "first_factor"}
_MIN_KEY_LENGTH = 16  # a bearer key shorter than this could be guessed


@dataclass(frozen=True)
class WebApp:
    """An application allowed to call the validate API with its bearer key."""

    name: str
    key: bytes = field(repr=False)
    first_factor: str = "store"  # store | pam | ldap | none, as for RADIUS clients


@dataclass(frozen=True)
class WebConfig:
    listen: tuple[str, int] = ("127.0.0.1", 8080)
    tls_cert: Path | None = None  # with tls_key: HTTPS served by otp-web itself
    tls_key: Path | None = None
    behind_proxy: bool = False  # a TLS-terminating proxy in front: any listen address, Secure cookies
    public_url: str = ""  # where users reach the portal (the RADIUS/PAM hint, the invite mail)
    self_enrollment: str = "open"  # open | invite | off: who may enrol a first token after the first factor
    enrollment_types: tuple[str, ...] = ("totp",)
    first_factor: str = "store"  # how the portal checks passwords: store | pam | ldap
    issuer: str = "OTP"  # the issuer authenticator apps show beside the account
    qr_scale: int = 5  # pixels per QR module
    session_seconds: int = 900  # a portal session ends this long after its login
    invite_hours: int = 72  # how long an enrolment code of `otp-admin user invite` is valid
    apps: tuple[WebApp, ...] = ()

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def secure_cookies(self) -> bool:
        """Browsers reach the portal over HTTPS (ours or the proxy's)."""
        return self.tls or self.behind_proxy

    def enrollment_hint(self) -> str:
        """Where a user without a token may enrol one, for the other doors' answers; "" when nobody may."""
        if self.self_enrollment == "off" or not self.public_url:
            return ""
        return self.public_url


def parse_web(t: Mapping[str, Any], base: Path) -> WebConfig:
    keys.known_keys(t, "web", _KEYS)
    d = WebConfig()
    listen = _listen(keys.text(t, "web", "listen", "127.0.0.1:8080"))
    tls_cert = keys.optional_path(t, "web", "tls_cert", base) if t.get("tls_cert") else None
    tls_key = keys.optional_path(t, "web", "tls_key", base) if t.get("tls_key") else None
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("web.tls_cert: give both tls_cert and tls_key, or neither")
    behind_proxy = keys.boolean(t, "web", "behind_proxy", False)
    if tls_cert is None and not behind_proxy and not ipaddress.ip_address(listen[0]).is_loopback:
        raise ConfigError(f"web.listen: {listen[0]} is not a loopback address: serve HTTPS (tls_cert, tls_key) or set "
                          "behind_proxy = true for a TLS proxy in front")
    public_url = keys.text(t, "web", "public_url", "")
    if public_url and (urlsplit(public_url).scheme not in ("http", "https") or not urlsplit(public_url).netloc):
        raise ConfigError(f"web.public_url: not an http(s) URL: {public_url!r}")
    return WebConfig(
        listen=listen, tls_cert=tls_cert, tls_key=tls_key, behind_proxy=behind_proxy, public_url=public_url.rstrip("/"),
        self_enrollment=keys.choice(t, "web", "self_enrollment", d.self_enrollment, ENROLLMENT_MODES),
        enrollment_types=_types(t.get("enrollment_types", list(d.enrollment_types))),
        first_factor=keys.choice(t, "web", "first_factor", d.first_factor, ("store", "pam", "ldap")),
        issuer=keys.text(t, "web", "issuer", d.issuer) or d.issuer,
        qr_scale=keys.integer(t, "web", "qr_scale", d.qr_scale, minimum=1, maximum=20),
        session_seconds=keys.integer(t, "web", "session_seconds", d.session_seconds, minimum=60, maximum=86_400),
        invite_hours=keys.integer(t, "web", "invite_hours", d.invite_hours, minimum=1, maximum=24 * 90),
        apps=_apps(t.get("apps", []), base),
    )


def _listen(text: str) -> tuple[str, int]:
    try:
        host, port = parse_hostport(text, 8080)
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise ConfigError(f"web.listen: {exc}") from None
    return host, port


def _types(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("web.enrollment_types: must be a list of token types")
    for v in value:
        if v not in ENROLLMENT_TYPES:
            raise ConfigError(f"web.enrollment_types: {v!r} is not one of {', '.join(ENROLLMENT_TYPES)}")
    return tuple(dict.fromkeys(value))


def _apps(value: Any, base: Path) -> tuple[WebApp, ...]:
    if not isinstance(value, list):
        raise ConfigError("web.apps: must be an array of tables ([[web.apps]])")
    apps = tuple(_app(a, f"web.apps[{i}]", base) for i, a in enumerate(value))
    names = [a.name for a in apps]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"web.apps: duplicate application name {name!r}")
    return apps


def _app(t: Any, section: str, base: Path) -> WebApp:
    if not isinstance(t, Mapping):
        raise ConfigError(f"{section}: must be a table")
    keys.known_keys(t, section, _APP_KEYS)
    name = keys.text(t, section, "name", None)
    if not name or not name.isprintable():
        raise ConfigError(f"{section}.name: must be a printable name")
    if ("key" in t) == ("key_file" in t):
        raise ConfigError(f"{section}.key: give exactly one of key or key_file")
    if "key" in t:
        key = keys.text(t, section, "key", None).encode()
    else:
        path = keys.path(t, section, "key_file", None, base)
        try:
            key = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"{section}.key_file: cannot read {path}: {exc.strerror}") from None
    if len(key) < _MIN_KEY_LENGTH:
        raise ConfigError(f"{section}.key: at least {_MIN_KEY_LENGTH} characters")
    first = keys.choice(t, section, "first_factor", "store", ("store", "pam", "ldap", "none"))
    return WebApp(name=name, key=key, first_factor=first)
