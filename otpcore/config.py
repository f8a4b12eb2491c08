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

from .delivery_config import DeliveryConfig, parse_delivery
from .errors import ConfigError
from .policy import Policy

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ClientConfig",
    "Config",
    "Policy",
    "RadiusConfig",
    "StoreConfig",
    "config_path",
    "load_config",
    "parse_config",
    "parse_hostport",
]

DEFAULT_CONFIG_PATH = Path("/etc/otp/otp.toml")
FIRST_FACTORS = ("store", "pam", "none")


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
    _reject_unknown(data, "", {"store", "radius", "policy", "delivery"})
    store = _parse_store(_table(data, "store"), base)
    radius = _parse_radius(_table(data, "radius"), base)
    policy = _parse_policy(_table(data, "policy"))
    delivery = parse_delivery(_table(data, "delivery"), base)
    return Config(path=path, store=store, radius=radius, policy=policy, delivery=delivery)


def parse_hostport(text: str, default_port: int, key: str = "address") -> tuple[str, int]:
    """'10.0.0.1:1812', '[::1]:1812', '[::1]', 'host' -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ConfigError(f"{key}: expected [ipv6]:port, got {text!r}")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ConfigError(f"{key}: missing host in {text!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{key}: bad port in {text!r}")
    return host, int(port_text)


# -- sections ---------------------------------------------------------------------------------------------------------


def _parse_store(t: Mapping[str, Any], base: Path) -> StoreConfig:
    _reject_unknown(t, "store", {"path", "key_file"})
    d = StoreConfig()
    return StoreConfig(
        path=_path(t, "store", "path", d.path, base),
        key_file=_path(t, "store", "key_file", d.key_file, base),
    )


def _parse_policy(t: Mapping[str, Any]) -> Policy:
    allowed = set(Policy.__dataclass_fields__)
    _reject_unknown(t, "policy", allowed)
    d = Policy()
    values: dict[str, Any] = {}
    # Upper bounds keep a typo from turning every request into millions of HMACs.
    bounds = {"totp_window": 100, "hotp_lookahead": 1000, "resync_window": 100_000, "max_failures": None,
              "lockout_seconds": None, "lockout_max_seconds": None, "challenge_timeout": 86_400,
              "client_max_failures": None, "client_failure_window": 86_400}
    for name, maximum in bounds.items():
        values[name] = _int(t, "policy", name, getattr(d, name), minimum=0, maximum=maximum)
    if "totp_max_drift" in t:
        values["totp_max_drift"] = _int(t, "policy", "totp_max_drift", 0, minimum=0, maximum=100)
    for name in ("max_failures", "challenge_timeout", "client_failure_window"):
        if values[name] < 1:
            raise ConfigError(f"policy.{name}: must be at least 1")
    values["no_token"] = _choice(t, "policy", "no_token", d.no_token, ("reject", "accept"))
    values["challenge"] = _bool(t, "policy", "challenge", d.challenge)
    values["pam_service"] = _str(t, "policy", "pam_service", d.pam_service)
    values.update(_parse_oob_policy(t, d))
    return Policy(**values)


def _parse_oob_policy(t: Mapping[str, Any], d: Policy) -> dict[str, Any]:
    from .oob import ALPHABETS, OPTION_BOUNDS

    values: dict[str, Any] = {}
    for name, low, high in OPTION_BOUNDS.values():
        values[name] = _int(t, "policy", name, getattr(d, name), minimum=low)
        if values[name] > high:
            raise ConfigError(f"policy.{name}: must be at most {high}")
    values["oob_alphabet"] = _choice(t, "policy", "oob_alphabet", d.oob_alphabet, tuple(ALPHABETS))
    for name in ("oob_max_per_hour", "oob_max_per_day"):
        values[name] = _int(t, "policy", name, getattr(d, name), minimum=1, maximum=10_000)
    return values


def _parse_radius(t: Mapping[str, Any], base: Path) -> RadiusConfig:
    _reject_unknown(t, "radius", {"listen", "accounting_listen", "workers", "clients"})
    listen = _addresses(t, "radius.listen", t.get("listen", ["127.0.0.1:1812"]), 1812)
    if "accounting_listen" in t:
        acct = _addresses(t, "radius.accounting_listen", t["accounting_listen"], 1813)
    else:
        acct = tuple((host, 1813) for host, _ in listen)
    workers = _int(t, "radius", "workers", 1, minimum=1)
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
    _reject_unknown(t, key, {"name", "address", "secret", "secret_file", "first_factor",
                             "require_message_authenticator"})
    address = _str(t, key, "address", None)
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        raise ConfigError(f"{key}.address: not an address or CIDR: {address!r}") from None
    name = _str(t, key, "name", str(network))
    if ("secret" in t) == ("secret_file" in t):
        raise ConfigError(f"{key}.secret: give exactly one of secret or secret_file")
    if "secret" in t:
        secret = _str(t, key, "secret", None).encode()
    else:
        secret_path = _path(t, key, "secret_file", None, base)
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
        first_factor=_choice(t, key, "first_factor", "store", FIRST_FACTORS),
        require_message_authenticator=_bool(t, key, "require_message_authenticator", True),
    )


# -- typed getters that name the key on error -------------------------------------------------------------------------


def _table(t: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = t.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: must be a table")
    return value


def _reject_unknown(t: Mapping[str, Any], section: str, allowed: set[str]) -> None:
    for k in t:
        if k not in allowed:
            where = f"{section}.{k}" if section else k
            raise ConfigError(f"{where}: unknown key")


def _str(t: Mapping[str, Any], section: str, name: str, default: str | None) -> str:
    if name not in t:
        if default is None:
            raise ConfigError(f"{section}.{name}: missing")
        return default
    value = t[name]
    if not isinstance(value, str):
        raise ConfigError(f"{section}.{name}: must be a string")
    return value


def _int(t: Mapping[str, Any], section: str, name: str, default: int, minimum: int | None = None,
         maximum: int | None = None) -> int:
    value = t.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{section}.{name}: must be an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{section}.{name}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{section}.{name}: must be at most {maximum}")
    return value


def _bool(t: Mapping[str, Any], section: str, name: str, default: bool) -> bool:
    value = t.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{section}.{name}: must be true or false")
    return value


def _choice(t: Mapping[str, Any], section: str, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _str(t, section, name, default)
    if value not in choices:
        raise ConfigError(f"{section}.{name}: must be one of {', '.join(choices)}")
    return value


def _path(t: Mapping[str, Any], section: str, name: str, default: Path | None, base: Path) -> Path:
    if name not in t:
        if default is None:
            raise ConfigError(f"{section}.{name}: missing")
        return default
    p = Path(_str(t, section, name, None))
    return p if p.is_absolute() else base / p


def _addresses(t: Mapping[str, Any], key: str, value: Any, default_port: int) -> tuple[tuple[str, int], ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: must be a list of host:port strings")
    out = []
    for v in value:
        host, port = parse_hostport(v, default_port, key)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"{key}: not an IP address: {host!r}") from None
        out.append((host, port))
    return tuple(out)
