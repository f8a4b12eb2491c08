"""`otp-admin group ...`: groups of users and the reply attributes an Access-Accept of theirs carries (set, list,
show, delete); and what `user set --group/--reply` and `user show` need of them.

Every list is checked against the RADIUS dictionary before it is stored (radiusd.replyattrs): an unknown attribute or
a bad value is refused with one line (exit 2) and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from otpcore.admin import Admin
from otpcore.config import Config
from otpcore.replies import ReplyPair, parse_pair
from otpcore.replyadmin import GroupView, ReplyAdmin
from otpcore.store import Store

from .output import escaped, iso, print_table

__all__ = ["pairs_json", "parse_replies", "register", "reply_admin", "reply_lines"]


def register(group: Any) -> None:
    s = group.add_parser("set", help="make a group or replace its reply attributes")
    s.add_argument("name")
    s.add_argument("--reply", action="append", default=[], metavar="ATTRIBUTE=VALUE",
                   help="a reply attribute an Access-Accept of the group's users carries (repeat for several, in "
                        "order); the list given replaces the group's")
    s.set_defaults(handler=set_group)
    s = group.add_parser("list", help="list the groups")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=list_groups)
    s = group.add_parser("show", help="show a group's reply attributes and users")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=show_group)
    s = group.add_parser("delete", help="delete a group that has no users")
    s.add_argument("name")
    s.set_defaults(handler=delete_group)


def reply_admin(store: Store) -> ReplyAdmin:
    from radiusd.replyattrs import check_pairs  # pyrad and the dictionary: only for the commands that need them

    return ReplyAdmin(store, check_pairs)


def parse_replies(texts: Sequence[str] | None) -> list[ReplyPair] | None:
    return None if texts is None else [parse_pair(text) for text in texts]


def set_group(args: argparse.Namespace, config: Config) -> int:
    pairs = parse_replies(args.reply) or []
    with Admin(config) as admin:
        view = reply_admin(admin.store).set_group(args.name, pairs, now=time.time())
    print(f"group {args.name} set: {len(view.attributes)} reply attribute(s), {len(view.members)} user(s)")
    for line in reply_lines(view.attributes):
        print(f"  {line}")
    return 0


def list_groups(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        views = reply_admin(admin.store).groups()
    if args.json:
        print(json.dumps([group_json(view) for view in views], indent=2))
    else:
        print_table([{"name": v.row.name, "users": len(v.members), "attributes": len(v.attributes),
                      "updated": iso(v.row.updated)} for v in views], ["name", "users", "attributes", "updated"])
    return 0


def show_group(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        view = reply_admin(admin.store).group(args.name)
    if args.json:
        print(json.dumps(group_json(view), indent=2))
        return 0
    print(f"name: {escaped(view.row.name)}")
    print(f"created: {iso(view.row.created)}")
    print(f"updated: {iso(view.row.updated)}")
    print("reply attributes (in this order, on every Access-Accept of its users):")
    for line in reply_lines(view.attributes) or ["(none)"]:
        print(f"  {line}")
    print(f"users: {escaped(', '.join(view.members)) if view.members else '(none)'}")
    return 0


def delete_group(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        reply_admin(admin.store).delete_group(args.name, now=time.time())
    print(f"group {args.name} deleted")
    return 0


def group_json(view: GroupView) -> dict[str, Any]:
    return {"name": view.row.name, "attributes": pairs_json(view.attributes), "users": view.members,
            "created": iso(view.row.created), "updated": iso(view.row.updated)}


def pairs_json(pairs: Sequence[ReplyPair]) -> list[dict[str, str]]:
    return [{"attribute": name, "value": value} for name, value in pairs]


def reply_lines(pairs: Sequence[ReplyPair]) -> list[str]:
    """`Name = value`, escaped, one per pair."""
    return [f"{escaped(name)} = {escaped(value)}" for name, value in pairs]
