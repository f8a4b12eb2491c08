"""The TOML configuration shared by otp-radiusd, otp-admin and the PAM module in local mode.

Every key is checked once at load time; a bad one raises ConfigError naming it (`radius.clients[1].secret: ...`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otpbase.hostport import parse_hostport

from . import tomlkeys as keys
from .delivery_config import DeliveryConfig, parse_delivery
from .errors import ConfigError
from .oob import ALPHABETS, OPTION_BOUNDS
from .policy import Policy
from .web_config import WebConfig, parse_web

if TYPE_CHECKING:
    from .ldap_config import LdapConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ClientConfig",
    "Config",
    "LdapConfig",
    "Policy",
    "RadiusConfig",
    "StoreConfig",
    "TlsConfig",
    "config_path",
    "load_config",
    "parse_address",
    "parse_config",
    "redact_url",
]

DEFAULT_CONFIG_PATH = Path("/etc/otp/otp.toml")
FIRST_FACTORS = ("store", "pam", "ldap", "none")
RADSEC_SECRET = b"radsec"  # RFC 6614 §2.3: the shared secret of RADIUS over TLS unless one is configured
_TLS_KEYS = ("tls_listen", "tls_cert", "tls_key", "tls_ca", "tls_idle_timeout")


@dataclass(frozen=True)
class StoreConfig:
    path: Path = Path("/var/lib/otp/otp.sqlite")  # SQLite (unless `url` is set)
    key_file: Path = Path("/etc/otp/otp.key")
    url: str | None = None  # PostgreSQL: a libpq URL (postgresql://...); exclusive with `path`
    password_file: Path | None = None  # the database password, kept out of the URL (PostgreSQL)

    @property
    def where(self) -> str:
        """The store as messages name it: the SQLite file, or the URL without any password in it."""
        return self.path.as_posix() if self.url is None else redact_url(self.url)


def redact_url(url: str) -> str:
    """A libpq URL with its password (if one was written in it after all) replaced by ***."""
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    user, at, hosts = authority.rpartition("@")
    if at and ":" in user:
        user = user.split(":", 1)[0] + ":***"
    tail = re.sub(r"(?i)(^|[?&])password=[^&]*", r"\1password=***", tail)
    return f"{scheme}{sep}{user}{at}{hosts}{slash}{tail}"


@dataclass(frozen=True)
class ClientConfig:
    name: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    secret: bytes = field(repr=False)
    first_factor: str = "store"
    require_message_authenticator: bool = True
    # RadSec (RFC 6614): the certificate's subject common name or one of its subjectAltNames must be this (None: any
    # certificate tls_ca trusts). A client given no secret is reached only over TLS, with the secret "radsec".
    tls_subject: str | None = None
    tls_only: bool = False


@dataclass(frozen=True)
class RadiusConfig:
    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 1812),)
    accounting_listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 1813),)
    workers: int = 1
    login_threads: int = 4  # per worker: the password logins (and other slow requests) checked at the same time
    clients: tuple[ClientConfig, ...] = ()
    tls: TlsConfig | None = None  # RadSec: None unless tls_listen is set


@dataclass(frozen=True)
class TlsConfig:
    """RadSec (RFC 6614, RADIUS/1.1 of RFC 9765 when a client offers it): where, with which certificate, trusting
    which CA for the clients' certificates."""

    listen: tuple[tuple[str, int], ...]
    cert: Path
    key: Path
    ca: Path
    idle_timeout: int = 300  # seconds without a request before a connection is closed


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    store: StoreConfig = StoreConfig()
    radius: RadiusConfig = RadiusConfig()
    policy: Policy = field(default_factory=Policy)
    # [delivery.smtp] / [delivery.sms]: how email and sms codes are sent (otpcore.delivery_config)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    ldap: LdapConfig | None = None  # [ldap]: the directory of first_factor "ldap" (otpcore.ldap_config)
    web: WebConfig = field(default_factory=WebConfig)  # [web]: otp-web, its API callers and portal (otpcore.web_config)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config, else $OTP_CONFIG, else /etc/otp/otp.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("OTP_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    resolved = config_path(path)
    try:
        with open(resolved, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {resolved}") from None
    except PermissionError:
        raise ConfigError(f"config file not readable: {resolved}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{resolved}: invalid TOML: {exc}") from None
    return parse_config(data, base=resolved.parent, path=resolved)


def parse_config(data: Mapping[str, Any], *, base: Path = Path("."), path: Path | None = None) -> Config:
    keys.known_keys(data, "", {"store", "radius", "policy", "delivery", "ldap", "web"})
    store = _parse_store(keys.subtable(data, "", "store"), base)
    radius = _parse_radius(keys.subtable(data, "", "radius"), base)
    policy = _parse_policy(keys.subtable(data, "", "policy"))
    delivery = parse_delivery(keys.subtable(data, "", "delivery"), base)
    ldap = _parse_ldap(keys.subtable(data, "", "ldap"), base)
    web = parse_web(keys.subtable(data, "", "web"), base)
    if ldap is None:
        users = [(f"radius.clients[{i}]", c.first_factor) for i, c in enumerate(radius.clients)]
        users += [(f"web.apps[{i}]", a.first_factor) for i, a in enumerate(web.apps)] + [("web", web.first_factor)]
        for key, kind in users:
            if kind == "ldap":
                raise ConfigError(f"{key}.first_factor: ldap needs an [ldap] table (the directory)")
    return Config(path=path, store=store, radius=radius, policy=policy, delivery=delivery, ldap=ldap, web=web)


def _parse_ldap(t: Mapping[str, Any], base: Path) -> LdapConfig | None:
    if not t:
        return None
    from .ldap_config import parse_ldap  # only for the deployments that have a directory

    return parse_ldap(t, base)


def parse_address(text: str, default_port: int, key: str) -> tuple[str, int]:
    """'10.0.0.1:1812', '[::1]:1812', '[::1]', 'host' -> (host, port); ConfigError naming `key` if it is none."""
    try:
        return parse_hostport(text, default_port)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


# -- sections ---------------------------------------------------------------------------------------------------------


def _parse_store(t: Mapping[str, Any], base: Path) -> StoreConfig:
    keys.known_keys(t, "store", {"path", "key_file", "url", "password_file"})
    d = StoreConfig()
    url = keys.optional_text(t, "store", "url")
    if url is not None:
        if "path" in t:
            raise ConfigError("store.url: give either path (SQLite) or url (PostgreSQL), not both")
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("store.url: must be a PostgreSQL URL (postgresql://user@host/database)")
    elif "password_file" in t:
        raise ConfigError("store.password_file: only for a PostgreSQL store (set store.url)")
    return StoreConfig(
        path=keys.path(t, "store", "path", d.path, base),
        key_file=keys.path(t, "store", "key_file", d.key_file, base),
        url=url,
        password_file=keys.optional_path(t, "store", "password_file", base),
    )


def _parse_policy(t: Mapping[str, Any]) -> Policy:
    allowed = set(Policy.__dataclass_fields__)
    keys.known_keys(t, "policy", allowed)
    d = Policy()
    values: dict[str, Any] = {}
    # Upper bounds keep a typo from turning every request into millions of HMACs.
    bounds = {"totp_window": 100, "hotp_lookahead": 1000, "resync_window": 100_000, "max_failures": None,
              "lockout_seconds": None, "lockout_max_seconds": None, "challenge_timeout": 86_400,
              "client_max_failures": None, "client_failure_window": 86_400}
    for name, maximum in bounds.items():
        values[name] = keys.integer(t, "policy", name, getattr(d, name), minimum=0, maximum=maximum)
    if "totp_max_drift" in t:
        values["totp_max_drift"] = keys.integer(t, "policy", "totp_max_drift", 0, minimum=0, maximum=100)
    for name in ("max_failures", "challenge_timeout", "client_failure_window"):
        if values[name] < 1:
            raise ConfigError(f"policy.{name}: must be at least 1")
    values["no_token"] = keys.choice(t, "policy", "no_token", d.no_token, ("reject", "accept"))
    values["challenge"] = keys.boolean(t, "policy", "challenge", d.challenge)
    values["pam_service"] = keys.text(t, "policy", "pam_service", d.pam_service)
    values["no_token_hint"] = keys.boolean(t, "policy", "no_token_hint", d.no_token_hint)
    values.update(_parse_oob_policy(t, d))
    return Policy(**values)


def _parse_oob_policy(t: Mapping[str, Any], d: Policy) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, low, high in OPTION_BOUNDS.values():
        values[name] = keys.integer(t, "policy", name, getattr(d, name), minimum=low, maximum=high)
    values["oob_alphabet"] = keys.choice(t, "policy", "oob_alphabet", d.oob_alphabet, tuple(ALPHABETS))
    for name in ("oob_max_per_hour", "oob_max_per_day"):
        values[name] = keys.integer(t, "policy", name, getattr(d, name), minimum=1, maximum=10_000)
    return values


def _parse_radius(t: Mapping[str, Any], base: Path) -> RadiusConfig:
    keys.known_keys(t, "radius", {"listen", "accounting_listen", "workers", "login_threads", "clients", *_TLS_KEYS})
    listen = _addresses(t, "radius.listen", t.get("listen", ["127.0.0.1:1812"]), 1812)
    if "accounting_listen" in t:
        acct = _addresses(t, "radius.accounting_listen", t["accounting_listen"], 1813)
    else:
        acct = tuple((host, 1813) for host, _ in listen)
    workers = keys.integer(t, "radius", "workers", 1, minimum=1)
    login_threads = keys.integer(t, "radius", "login_threads", RadiusConfig.login_threads, minimum=1, maximum=64)
    raw_clients = t.get("clients", [])
    if not isinstance(raw_clients, list):
        raise ConfigError("radius.clients: must be an array of tables ([[radius.clients]])")
    clients = tuple(_parse_client(c, f"radius.clients[{i}]", base) for i, c in enumerate(raw_clients))
    names = [c.name for c in clients]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"radius.clients: duplicate client name {name!r}")
    tls = _parse_tls(t, base)
    if tls is None:
        for i, client in enumerate(clients):
            if client.tls_only:
                raise ConfigError(f"radius.clients[{i}].secret: missing (without one a client is reached only over "
                                  "RadSec, and radius.tls_listen is not set)")
    return RadiusConfig(listen=listen, accounting_listen=acct, workers=workers, login_threads=login_threads,
                        clients=clients, tls=tls)


def _parse_tls(t: Mapping[str, Any], base: Path) -> TlsConfig | None:
    """tls_listen with its certificate, key and CA, all or nothing."""
    given = [name for name in _TLS_KEYS if name in t]
    if not given:
        return None
    if "tls_listen" not in t:
        raise ConfigError(f"radius.{given[0]}: RadSec needs radius.tls_listen too")
    for name in ("tls_cert", "tls_key", "tls_ca"):
        if name not in t:
            raise ConfigError(f"radius.{name}: missing (radius.tls_listen is set)")
    return TlsConfig(
        listen=_addresses(t, "radius.tls_listen", t["tls_listen"], 2083),
        cert=keys.path(t, "radius", "tls_cert", None, base),
        key=keys.path(t, "radius", "tls_key", None, base),
        ca=keys.path(t, "radius", "tls_ca", None, base),
        idle_timeout=keys.integer(t, "radius", "tls_idle_timeout", TlsConfig.idle_timeout, minimum=1,
                                  maximum=86_400),
    )


def _parse_client(t: Any, key: str, base: Path) -> ClientConfig:
    if not isinstance(t, Mapping):
        raise ConfigError(f"{key}: must be a table")
    keys.known_keys(t, key, {"name", "address", "secret", "secret_file", "first_factor",
                             "require_message_authenticator", "tls_subject"})
    address = keys.text(t, key, "address", None)
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        raise ConfigError(f"{key}.address: not an address or CIDR: {address!r}") from None
    name = keys.text(t, key, "name", str(network))
    secret = _client_secret(t, key, base)
    return ClientConfig(
        name=name,
        network=network,
        secret=RADSEC_SECRET if secret is None else secret,
        first_factor=keys.choice(t, key, "first_factor", "store", FIRST_FACTORS),
        require_message_authenticator=keys.boolean(t, key, "require_message_authenticator", True),
        tls_subject=keys.optional_text(t, key, "tls_subject"),
        tls_only=secret is None,
    )


def _client_secret(t: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    """secret or secret_file; None for neither: a RadSec-only client (never matched over UDP)."""
    if "secret" in t and "secret_file" in t:
        raise ConfigError(f"{key}.secret: give one of secret or secret_file, not both")
    if "secret" in t:
        secret = keys.text(t, key, "secret", None).encode()
    elif "secret_file" in t:
        secret_path = keys.path(t, key, "secret_file", None, base)
        try:
            secret = secret_path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"{key}.secret_file: cannot read {secret_path}: {exc.strerror}") from None
    else:
        return None
    if not secret:
        raise ConfigError(f"{key}.secret: must not be empty")
    return secret


def _addresses(t: Mapping[str, Any], key: str, value: Any, default_port: int) -> tuple[tuple[str, int], ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: must be a list of host:port strings")
    out = []
    for v in value:
        host, port = parse_address(v, default_port, key)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"{key}: not an IP address: {host!r}") from None
        out.append((host, port))
    return tuple(out)
