"""Typed getters for the tables of the TOML configuration: each returns a key's value or its default, and raises
ConfigError naming the key (`delivery.smtp.port: must be an integer from 1 to 65535`) when it has the wrong type or
range. One set for every section (otpcore.config, otpcore.delivery_config).

`section` is the dotted name of the table (`policy`, `radius.clients[0]`); `name` the key within it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["boolean", "choice", "integer", "known_keys", "optional_path", "optional_text", "path", "subtable", "text"]


def _key(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


def subtable(t: Mapping[str, Any], section: str, name: str) -> Mapping[str, Any]:
    """The table `name` of `t` (an empty one when absent)."""
    value = t.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{_key(section, name)}: must be a table")
    return value


def known_keys(t: Mapping[str, Any], section: str, allowed: Collection[str]) -> None:
    """Refuse the first key of `t` that is not in `allowed` (a typo must not pass for a default)."""
    for name in t:
        if name not in allowed:
            raise ConfigError(f"{_key(section, name)}: unknown key")


def text(t: Mapping[str, Any], section: str, name: str, default: str | None = None) -> str:
    """A string; a key without a default (None) is required."""
    if name not in t:
        if default is None:
            raise ConfigError(f"{_key(section, name)}: missing")
        return default
    value = t[name]
    if not isinstance(value, str):
        raise ConfigError(f"{_key(section, name)}: must be a string")
    return value


def optional_text(t: Mapping[str, Any], section: str, name: str) -> str | None:
    """A non-empty string, or None when the key is absent."""
    if name not in t:
        return None
    value = text(t, section, name)
    if not value:
        raise ConfigError(f"{_key(section, name)}: must not be empty")
    return value


def integer(t: Mapping[str, Any], section: str, name: str, default: int, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    value = t.get(name, default)
    if minimum is not None and maximum is not None:
        wanted = f"must be an integer from {minimum} to {maximum}"
    else:
        wanted = "must be an integer"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{_key(section, name)}: {wanted}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{_key(section, name)}: {wanted if maximum is not None else f'must be at least {minimum}'}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{_key(section, name)}: {wanted if minimum is not None else f'must be at most {maximum}'}")
    return value


def boolean(t: Mapping[str, Any], section: str, name: str, default: bool) -> bool:
    value = t.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{_key(section, name)}: must be true or false")
    return value


def choice(t: Mapping[str, Any], section: str, name: str, default: str, choices: Collection[str]) -> str:
    value = text(t, section, name, default)
    if value not in choices:
        raise ConfigError(f"{_key(section, name)}: must be one of {', '.join(choices)}")
    return value


def path(t: Mapping[str, Any], section: str, name: str, default: Path | None, base: Path) -> Path:
    """A file name, relative to `base` (the config file's folder) unless absolute; required without a default."""
    if name not in t:
        if default is None:
            raise ConfigError(f"{_key(section, name)}: missing")
        return default
    return _resolved(text(t, section, name), base)


def optional_path(t: Mapping[str, Any], section: str, name: str, base: Path) -> Path | None:
    value = optional_text(t, section, name)
    return None if value is None else _resolved(value, base)


def _resolved(value: str, base: Path) -> Path:
    given = Path(value)
    return given if given.is_absolute() else base / given
