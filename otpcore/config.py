"""The TOML configuration shared by otp-radiusd, otp-admin and the PAM module in local mode.

Every key is checked once at load time; a bad one raises ConfigError naming it (`radius.clients[1].secret: ...`).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otpbase.hostport import parse_hostport

from . import tomlkeys as keys
from .delivery_config import DeliveryConfig, parse_delivery
from .errors import ConfigError
from .ldap_config import LdapConfig, parse_ldap
from .oob import ALPHABETS, OPTION_BOUNDS
from .policy import Policy
from .web_config import WebConfig, parse_web

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ClientConfig",
    "Config",
    "LdapConfig",
    "Policy",
    "RadiusConfig",
    "StoreConfig",
    "config_path",
    "load_config",
    "parse_address",
    "parse_config",
]

DEFAULT_CONFIG_PATH = Path("/etc/otp/otp.toml")
FIRST_FACTORS = ("store", "pam", "ldap", "none")


@dataclass(frozen=True)
class StoreConfig:
    path: Path = Path("/var/lib/otp/otp.sqlite")
    key_file: Path = Path("/etc/otp/otp.key")


@dataclass(frozen=True)
class ClientConfig:
    name: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    secret: bytes = field(repr=False)
    first_factor: str = "store"
    require_message_authenticator: bool = True


@dataclass(frozen=True)
class RadiusConfig:
    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 1812),)
    accounting_listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 1813),)
    workers: int = 1
    clients: tuple[ClientConfig, ...] = ()


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
    ldap = parse_ldap(keys.subtable(data, "", "ldap"), base)
    web = parse_web(keys.subtable(data, "", "web"), base)
    if ldap is None:
        users = [(f"radius.clients[{i}]", c.first_factor) for i, c in enumerate(radius.clients)]
        users += [(f"web.apps[{i}]", a.first_factor) for i, a in enumerate(web.apps)] + [("web", web.first_factor)]
        for key, kind in users:
            if kind == "ldap":
                raise ConfigError(f"{key}.first_factor: ldap needs an [ldap] table (the directory)")
    return Config(path=path, store=store, radius=radius, policy=policy, delivery=delivery, ldap=ldap, web=web)


def parse_address(text: str, default_port: int, key: str) -> tuple[str, int]:
    """'10.0.0.1:1812', '[::1]:1812', '[::1]', 'host' -> (host, port); ConfigError naming `key` if it is none."""
    try:
        return parse_hostport(text, default_port)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


# -- sections ---------------------------------------------------------------------------------------------------------


def _parse_store(t: Mapping[str, Any], base: Path) -> StoreConfig:
    keys.known_keys(t, "store", {"path", "key_file"})
    d = StoreConfig()
    return StoreConfig(
        path=keys.path(t, "store", "path", d.path, base),
        key_file=keys.path(t, "store", "key_file", d.key_file, base),
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
    keys.known_keys(t, "radius", {"listen", "accounting_listen", "workers", "clients"})
    listen = _addresses(t, "radius.listen", t.get("listen", ["127.0.0.1:1812"]), 1812)
    if "accounting_listen" in t:
        acct = _addresses(t, "radius.accounting_listen", t["accounting_listen"], 1813)
    else:
        acct = tuple((host, 1813) for host, _ in listen)
    workers = keys.integer(t, "radius", "workers", 1, minimum=1)
    raw_clients = t.get("clients", [])
    if not isinstance(raw_clients, list):
        raise ConfigError("radius.clients: must be an array of tables ([[radius.clients]])")
    clients = tuple(_parse_client(c, f"radius.clients[{i}]", base) for i, c in enumerate(raw_clients))
    names = [c.name for c in clients]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"radius.clients: duplicate client name {name!r}")
    return RadiusConfig(listen=listen, accounting_listen=acct, workers=workers, clients=clients)


def _parse_client(t: Any, key: str, base: Path) -> ClientConfig:
    if not isinstance(t, Mapping):
        raise ConfigError(f"{key}: must be a table")
    keys.known_keys(t, key, {"name", "address", "secret", "secret_file", "first_factor",
                             "require_message_authenticator"})
    address = keys.text(t, key, "address", None)
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        raise ConfigError(f"{key}.address: not an address or CIDR: {address!r}") from None
    name = keys.text(t, key, "name", str(network))
    if ("secret" in t) == ("secret_file" in t):
        raise ConfigError(f"{key}.secret: give exactly one of secret or secret_file")
    if "secret" in t:
        secret = keys.text(t, key, "secret", None).encode()
    else:
        secret_path = keys.path(t, key, "secret_file", None, base)
        try:
            secret = secret_path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"{key}.secret_file: cannot read {secret_path}: {exc.strerror}") from None
    if not secret:
        raise ConfigError(f"{key}.secret: must not be empty")
    return ClientConfig(
        name=name,
        network=network,
        secret=secret,
        first_factor=keys.choice(t, key, "first_factor", "store", FIRST_FACTORS),
        require_message_authenticator=keys.boolean(t, key, "require_message_authenticator", True),
    )


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
