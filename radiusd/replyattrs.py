"""Reply attributes (otpcore.replies) as an Access-Accept carries them: checked and encoded with the packaged RADIUS
dictionary (radiusd.dictionary: FreeRADIUS format, the vendors' files included).

`check_pairs` is what otp-admin runs on every list before it stores it: an attribute the dictionary does not have,
one this server cannot send (it sets it itself, or the value would be hidden with each request's authenticator), a
value its type cannot hold, or lists too long for an Accept, are refused with one line (InputError). So the server
meets only lists that encode; it encodes each distinct list once (`encoded`, cached by content).

A pair is `Name` or `Name:tag` (RFC 2868 tags, for the attributes the dictionary marks has_tag) and a value written
as text: a number or one of the attribute's VALUE names for the integer types, an address for the address types,
`0x` and hex digits (or plain text) for octets, text for strings.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from pyrad import tools

from otpbase.escape import escape
from otpbase.radius.constants import MAX_VALUE, VENDOR_SPECIFIC
from otpbase.radius.framing import attribute
from otpcore.errors import InputError
from otpcore.replies import ReplyPair

from .dictionary import load_dictionary

__all__ = ["REPLY_BUDGET", "check_pairs", "encode_pairs", "encoded"]

log = logging.getLogger("otp.radiusd")

# Octets the attributes may take in an Accept (of 4096 at most, RFC 2865 §3): the rest is left for the header, the
# Message-Authenticator, Reply-Message, the request's Proxy-States and what MS-CHAP answers.
REPLY_BUDGET = 3000
_SERVER_OWNED = frozenset({  # set by the server itself, or with no place in an Accept
    "User-Password", "CHAP-Password", "CHAP-Challenge", "Reply-Message", "State", "Proxy-State", "EAP-Message",
    "Message-Authenticator", "MS-CHAP-Challenge", "MS-CHAP-Response", "MS-CHAP2-Response", "MS-CHAP2-Success",
    "MS-CHAP-Error",
})
_INTEGER_TYPES = frozenset({"integer", "short", "byte", "signed", "integer64", "date"})
_PARSED_TYPES = frozenset({"ipaddr", "ipv6addr", "ipv6prefix", "ifid", "ether"})  # pyrad reads them from text
_TYPES = _INTEGER_TYPES | _PARSED_TYPES | {"string", "octets"}
_VSA_HEADER = 6  # vendor id, vendor type, vendor length


def check_pairs(pairs: Sequence[ReplyPair]) -> tuple[ReplyPair, ...]:
    """The pairs as the dictionary spells them; InputError (one line) for the first one that cannot be sent, or when
    together they take more than REPLY_BUDGET octets."""
    checked = []
    size = 0
    for name, value in pairs:
        pair, data = _encode_pair(name, value)
        checked.append(pair)
        size += len(data)
    if size > REPLY_BUDGET:
        raise InputError(f"the reply attributes take {size} octets, more than the {REPLY_BUDGET} an Access-Accept "
                         "has room for")
    return tuple(checked)


def encode_pairs(pairs: Sequence[ReplyPair]) -> bytes:
    """The attributes, in order, as they go into a reply. InputError as check_pairs."""
    return b"".join(_encode_pair(name, value)[1] for name, value in pairs)


@functools.lru_cache(maxsize=4096)
def encoded(pairs: tuple[ReplyPair, ...]) -> bytes | None:
    """encode_pairs(), once per distinct list; None (logged once per list) for one that does not encode, which only
    a store written past otp-admin, or a dictionary changed since, can hold."""
    try:
        return encode_pairs(pairs)
    except InputError as exc:
        log.error("reply attributes that cannot be encoded (%s): accepts that grant them are refused",
                  escape(str(exc)))
        return None


def _encode_pair(name: str, value: str) -> tuple[ReplyPair, bytes]:
    """((name, value) as the dictionary spells them, the encoded attribute)."""
    attr, spelled, tag = _attribute(name)
    value, data = _value(attr, spelled, value, tag)
    if not data:
        raise InputError(f"{spelled}: the value is empty")
    limit = MAX_VALUE - (_VSA_HEADER if attr.vendor else 0)
    if len(data) > limit:
        raise InputError(f"{spelled}: the value takes {len(data)} octets, at most {limit} fit in the attribute")
    if attr.vendor:
        vendor = int(load_dictionary().vendors.GetForward(attr.vendor))
        return (spelled, value), attribute(VENDOR_SPECIFIC, vendor.to_bytes(4, "big") + attribute(attr.code, data))
    return (spelled, value), attribute(attr.code, data)


def _attribute(text: str) -> tuple[Any, str, int | None]:
    """The dictionary's attribute of `Name` or `Name:tag` (any case), its name as the dictionary spells it (with the
    tag), the tag."""
    name, colon, tag_text = text.partition(":")
    spelled = _names().get(name.lower())
    if spelled is None:
        raise InputError(f"unknown attribute {name!r}: not in the RADIUS dictionary (dictionaries/ of the package)")
    attr = load_dictionary().attributes[spelled]
    if spelled in _SERVER_OWNED:
        raise InputError(f"{spelled}: set by the server itself, not a reply attribute")
    if attr.encrypt:
        raise InputError(f"{spelled}: its value is hidden with each request's authenticator: not supported")
    if attr.is_sub_attribute or attr.type not in _TYPES:
        raise InputError(f"{spelled}: attributes of type {attr.type} are not supported")
    if not colon:
        return attr, spelled, None
    if not attr.has_tag:
        raise InputError(f"{spelled}: takes no tag ({text!r})")
    if not (tag_text.isascii() and tag_text.isdigit() and int(tag_text) <= 31):
        raise InputError(f"{spelled}: a tag is a number from 0 to 31, not {tag_text!r}")
    return attr, f"{spelled}:{int(tag_text)}", int(tag_text)


@functools.cache
def _names() -> dict[str, str]:
    """Lower-cased name -> the name as the dictionary spells it (FreeRADIUS reads names in any case too)."""
    return {name.lower(): name for name in load_dictionary().attributes}


def _value(attr: Any, spelled: str, value: str, tag: int | None) -> tuple[str, bytes]:
    """(the value, VALUE names as the dictionary spells them; its encoding, with the tag)."""
    kind = attr.type
    if kind in _INTEGER_TYPES:
        return _integer(attr, spelled, value, tag)
    if kind == "octets":
        return value, _octets(spelled, value)
    if kind == "string":
        data = value.encode()
        if tag is not None or (attr.has_tag and data[0] <= 0x1F):  # RFC 2868 §3: such a first octet reads as a tag
            data = bytes((tag or 0,)) + data
        return value, data
    try:
        return value, bytes(tools.EncodeAttr(kind, value))
    except (ValueError, TypeError):
        raise InputError(f"{spelled}: not a valid {kind}: {value!r}") from None


def _integer(attr: Any, spelled: str, value: str, tag: int | None) -> tuple[str, bytes]:
    named = {name.lower(): name for name in attr.values.forward}  # the attribute's VALUE names
    if value.lower() in named:
        value = named[value.lower()]
        data = bytes(attr.values.GetForward(value))
    elif value.isascii() and value.removeprefix("-").isdigit():
        try:
            data = bytes(tools.EncodeAttr(attr.type, int(value)))
        except ValueError as exc:
            raise InputError(f"{spelled}: {exc}") from None
    else:
        known = f" or one of {', '.join(sorted(named.values()))}" if 0 < len(named) <= 12 else (
            " or one of its VALUE names" if named else "")
        raise InputError(f"{spelled}: not a number{known}: {value!r}")
    if tag is not None:  # RFC 2868 §3: the tag takes the first octet of an integer
        if data[0]:
            raise InputError(f"{spelled}: {value} does not fit in 24 bits, as a tagged integer must")
        data = bytes((tag,)) + data[1:]
    return value, data


def _octets(spelled: str, value: str) -> bytes:
    """`0x` and hex digits, else the text itself (a Class written as text)."""
    if not value.startswith("0x"):
        return value.encode()
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InputError(f"{spelled}: not hex digits after 0x: {value!r}") from None
