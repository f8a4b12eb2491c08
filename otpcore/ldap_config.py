"""The [ldap] table: the directory that checks passwords (first_factor = "ldap") and holds the e-mail addresses and
phone numbers of its users (read when a code is sent). Checked at load time like every other key; ldap3 itself is
imported only by otpcore.firstfactor.ldap, when a directory is first used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import tomlkeys as keys
from .errors import ConfigError, InputError
from .specs import validate_group_name

__all__ = ["DEFAULT_USER_FILTER", "DnKey", "LdapConfig", "dn_key", "parse_ldap"]

DEFAULT_USER_FILTER = "(&(objectClass=person)(uid={user}))"
# A DN as compared: its RDNs in order, each the sorted (type, value) pairs of its attribute-value assertions, types
# and values case-folded, values unescaped. Tuples, not text: no spelling of one DN can read as another.
DnKey = tuple[tuple[tuple[str, str], ...], ...]
_KEYS = {"urls", "start_tls", "ca_file", "bind_dn", "bind_password_file", "base_dn", "user_filter", "email_attribute",
         "phone_attribute", "group_dn", "timeout", "group_attribute", "reply_groups"}


@dataclass(frozen=True)
class LdapConfig:
    urls: tuple[str, ...]  # tried in order; ldaps:// or ldap:// with start_tls
    bind_dn: str  # the service account that searches users' entries
    bind_password: str = field(repr=False)  # read from bind_password_file at load time
    base_dn: str
    start_tls: bool = False
    ca_file: Path | None = None  # None: the system's certificate authorities
    user_filter: str = DEFAULT_USER_FILTER  # `{user}` stands for the escaped user name
    email_attribute: str = "mail"
    phone_attribute: str = "mobile"
    group_dn: str = ""  # "": no group check
    timeout: int = 2  # seconds per URL, for connecting and for every operation together
    group_attribute: str = "memberOf"  # the entry's attribute that lists its groups (AD; OpenLDAP's memberof overlay)
    # (group DN, reply group) in the table's order: the first group the entry is a member of is the user's reply
    # group; empty: the directory says nothing about reply groups
    reply_groups: tuple[tuple[str, str], ...] = ()


def parse_ldap(t: Mapping[str, Any], base: Path) -> LdapConfig | None:
    """The [ldap] table, or None when the config has none."""
    if not t:
        return None
    keys.known_keys(t, "ldap", _KEYS)
    start_tls = keys.boolean(t, "ldap", "start_tls", False)
    urls = _urls(t.get("urls"), start_tls)
    ca_file = keys.optional_path(t, "ldap", "ca_file", base)
    if ca_file is not None:
        _readable(ca_file, "ldap.ca_file")
    password_file = keys.path(t, "ldap", "bind_password_file", None, base)
    password = _readable(password_file, "ldap.bind_password_file").strip()
    if not password:
        raise ConfigError(f"ldap.bind_password_file: {password_file} is empty")
    user_filter = keys.text(t, "ldap", "user_filter", DEFAULT_USER_FILTER)
    if "{user}" not in user_filter or not (user_filter.startswith("(") and user_filter.endswith(")")):
        raise ConfigError("ldap.user_filter: must be a parenthesised LDAP filter containing {user}")
    return LdapConfig(
        urls=urls, start_tls=start_tls, ca_file=ca_file, bind_password=password,
        bind_dn=_required(t, "bind_dn"), base_dn=_required(t, "base_dn"), user_filter=user_filter,
        email_attribute=_attribute(t, "email_attribute", "mail"),
        phone_attribute=_attribute(t, "phone_attribute", "mobile"),
        group_dn=keys.text(t, "ldap", "group_dn", ""),
        timeout=keys.integer(t, "ldap", "timeout", 2, minimum=1, maximum=60),
        group_attribute=_attribute(t, "group_attribute", "memberOf"),
        reply_groups=_reply_groups(keys.subtable(t, "ldap", "reply_groups")),
    )


def _reply_groups(table: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """[ldap.reply_groups]: "group DN" = "reply group name" (otp-admin group set makes the group)."""
    pairs, seen = [], set()
    for dn, name in table.items():
        key = dn_key(dn)
        if key is None:
            raise ConfigError(f"ldap.reply_groups: not a DN: {dn!r}")
        if key in seen:
            raise ConfigError(f"ldap.reply_groups: {dn!r} names a group listed before")
        seen.add(key)
        if not isinstance(name, str):
            raise ConfigError(f"ldap.reply_groups.{dn!r}: must be the name of a reply group")
        try:
            pairs.append((dn, validate_group_name(name)))
        except InputError as exc:
            raise ConfigError(f"ldap.reply_groups.{dn!r}: {exc}") from None
    return tuple(pairs)


def dn_key(dn: str) -> DnKey | None:
    """`dn` as compared (DnKey), parsed by ldap3 (RFC 4514); None for text that is not a DN."""
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.dn import parse_dn

    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPInvalidDnError:
        return None
    if not parts or any(not kind or not value for kind, value, _ in parts) or parts[-1][2]:
        return None  # an empty type or value, or a separator with nothing after it
    rdns: list[tuple[tuple[str, str], ...]] = []
    rdn: list[tuple[str, str]] = []
    for kind, value, separator in parts:
        rdn.append((kind.lower(), _unescaped(value).lower()))
        if separator != "+":  # "," or the end: the RDN is complete
            rdns.append(tuple(sorted(rdn)))
            rdn = []
    return tuple(rdns)


def _unescaped(value: str) -> str:
    """An RFC 4514 value as the directory holds it: `\\XX` hex pairs are bytes of UTF-8, `\\c` is c."""
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            pair = value[i + 1:i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out += bytes.fromhex(pair)
                i += 3
                continue
            i += 1
        out += value[i].encode()
        i += 1
    return out.decode("utf-8", "replace")


def _urls(value: Any, start_tls: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError("ldap.urls: must be a list of ldaps:// or ldap:// URLs")
    for url in value:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ConfigError(f"ldap.urls: not a URL: {url!r}") from None
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.fragment or parts.username is not None:
            raise ConfigError(f"ldap.urls: must be ldaps://HOST[:PORT] or ldap://HOST[:PORT], not {url!r}")
        if parts.scheme == "ldap" and not start_tls:
            # A password must never cross the network in the clear: plain LDAP only with StartTLS.
            raise ConfigError(f"ldap.urls: {url} would send passwords in the clear: use ldaps:// or start_tls = true")
    return tuple(value)


def _required(t: Mapping[str, Any], name: str) -> str:
    value = keys.text(t, "ldap", name, None)
    if not value.strip():
        raise ConfigError(f"ldap.{name}: must not be empty")
    return value


def _attribute(t: Mapping[str, Any], name: str, default: str) -> str:
    value = keys.text(t, "ldap", name, default)
    if not value or not all(c.isascii() and (c.isalnum() or c in "-;.") for c in value):
        raise ConfigError(f"ldap.{name}: not an attribute name: {value!r}")
    return value


def _readable(path: Path, key: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path} is not UTF-8 text") from None
