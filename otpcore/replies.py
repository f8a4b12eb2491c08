"""Reply attributes: what an Access-Accept grants (a Class, a Filter-Id, a vendor's attribute ...), per group of users
and per user, as plain (name, value) pairs. The core never encodes them (it does not know RADIUS dictionaries): the
RADIUS door does (radiusd.replyattrs), and otp-admin has it check every list when it is set (`Checker`), so the
server never meets a pair it cannot encode. The PAM door ignores them.

How a group's list and a user's own list combine, in `combine`: the group's pairs first, in their order, except those
of an attribute the user's list sets (the user's values replace the group's values of that attribute, a tag being
part of the attribute's name: Tunnel-Private-Group-Id:1), then the user's pairs in their order.

Groups from the directory: with [ldap.reply_groups], each password check by the directory (first_factor "ldap")
names the user's reply group, and `follow_directory` writes it on the user's row when it changed, so the accept (in
the same request, after a challenge, or on another node) grants it; an `otp-admin user set --group` of such a user
lasts until their next login.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from otpbase.escape import escape

from .errors import InputError

if TYPE_CHECKING:
    from .store import Store, UserRow

__all__ = ["Checker", "ReplyPair", "combine", "dump_pairs", "follow_directory", "granted", "load_pairs",
           "parse_pair"]

ReplyPair = tuple[str, str]  # (attribute name as the dictionary spells it, optionally ":tag"; value as text)

# Checks a list of pairs as an Accept would carry it: the pairs as the dictionary spells them, or InputError.
Checker = Callable[[Sequence[ReplyPair]], tuple[ReplyPair, ...]]

log = logging.getLogger("otpcore.replies")

def parse_pair(text: str) -> ReplyPair:
    """`Attribute=value` (the value is everything after the first '=', spaces around both removed)."""
    name, equals, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not equals or not name:
        raise InputError(f"--reply {text!r}: expected ATTRIBUTE=VALUE")
    if not value:
        raise InputError(f"--reply {text!r}: the value is empty")
    return name, value


def combine(group: Sequence[ReplyPair], user: Sequence[ReplyPair]) -> tuple[ReplyPair, ...]:
    """What an Accept carries: the group's pairs but those of attributes the user sets, then the user's."""
    if not user:
        return tuple(group)
    overridden = {name for name, _ in user}
    return (*(pair for pair in group if pair[0] not in overridden), *user)


def granted(store: Store, row: UserRow) -> tuple[ReplyPair, ...]:
    """What an Accept of the user carries: its group's list and its own, combined."""
    group = store.reply_group(row.reply_group) if row.reply_group is not None else None
    return combine(load_pairs(group.attributes if group is not None else None), load_pairs(row.reply))


def follow_directory(store: Store, row: UserRow, group: str | None) -> UserRow:
    """The directory says the user is in reply group `group` (None: in none of ldap.reply_groups): the user's row
    follows, and is returned as written (the accept of this very login reads its group from it)."""
    if group == row.reply_group:
        return row
    with store.transaction():
        if group is not None and store.reply_group(group) is None:
            log.warning("ldap.reply_groups names the reply group %s, which does not exist (otp-admin group set): "
                        "%s is given none", group, escape(row.name))
            group = None
        fresh = store.user_by_id(row.id)  # under the write lock: the user's own list is kept as it is now
        if fresh is None or fresh.reply_group == group:
            return fresh or row
        store.set_user_reply(row.id, group=group, attributes=fresh.reply)
    log.info("directory: %s is now in reply group %s", escape(row.name), group or "(none)")
    return fresh._replace(reply_group=group)


def dump_pairs(pairs: Sequence[ReplyPair]) -> str:
    """As the store keeps a list: JSON, a list of [name, value]."""
    return json.dumps([list(pair) for pair in pairs], ensure_ascii=False)


@functools.lru_cache(maxsize=1024)
def load_pairs(text: str | None) -> tuple[ReplyPair, ...]:
    """A list as the store keeps it (None: none). Cached: every accept of a group's member reads the same text."""
    if not text:
        return ()
    return tuple((str(name), str(value)) for name, value in json.loads(text))
