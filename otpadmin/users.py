"""`otp-admin user ...`: add, list, show, set (contact, group, reply attributes), delete, unlock, passwd."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from otpcore import policy as pol
from otpcore.admin import Admin, UserSpec
from otpcore.config import Config
from otpcore.errors import InputError
from otpcore.replies import load_pairs
from otpcore.store import UserRow

from .groups import pairs_json, parse_replies, reply_admin, reply_lines
from .output import emit, escaped, iso, print_table
from .stdin import read_password
from .tokens import table_rows, token_json

__all__ = ["register", "user_json"]


def register(user: Any) -> None:
    s = user.add_parser("add", help="add a user")
    s.add_argument("name")
    s.add_argument("--email")
    s.add_argument("--phone")
    s.add_argument("--password-stdin", action="store_true", help="read the first-factor password from stdin")
    s.set_defaults(handler=add)
    s = user.add_parser("list", help="list users")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=list_users)
    s = user.add_parser("show", help="show a user and their tokens")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=show)
    for verb, handler, text in (("delete", delete, "delete a user and their tokens"),
                                ("unlock", unlock, "clear a lockout and the failure count")):
        s = user.add_parser(verb, help=text)
        s.add_argument("name")
        s.set_defaults(handler=handler)
    s = user.add_parser("set", help="change a user's e-mail address, phone number, group or reply attributes")
    s.add_argument("name")
    email = s.add_mutually_exclusive_group()
    email.add_argument("--email", help="the new e-mail address (where email tokens send their codes)")
    email.add_argument("--clear-email", action="store_true", help="remove the e-mail address")
    phone = s.add_mutually_exclusive_group()
    phone.add_argument("--phone", help="the new phone number (where sms tokens send their codes)")
    phone.add_argument("--clear-phone", action="store_true", help="remove the phone number")
    group = s.add_mutually_exclusive_group()
    group.add_argument("--group", help="the group whose reply attributes the user's Access-Accepts carry")
    group.add_argument("--clear-group", action="store_true", help="take the user out of its group")
    reply = s.add_mutually_exclusive_group()
    reply.add_argument("--reply", action="append", metavar="ATTRIBUTE=VALUE",
                       help="the user's own reply attribute, sent after the group's (repeat for several, in order; "
                            "the list given replaces the user's; its attributes replace the group's of the same name)")
    reply.add_argument("--clear-reply", action="store_true", help="remove the user's own reply attributes")
    s.set_defaults(handler=set_user)
    s = user.add_parser("passwd", help="set the first-factor password")
    s.add_argument("name")
    s.add_argument("--password-stdin", action="store_true", required=True)
    s.add_argument("--reversible", action="store_true",
                   help="also keep the password itself, sealed, for MS-CHAPv2/CHAP logins with password + code "
                        "(a compromise of the store and its key file reveals it)")
    s.set_defaults(handler=passwd)


def add(args: argparse.Namespace, config: Config) -> int:
    password = read_password() if args.password_stdin else None
    with Admin(config) as admin:
        admin.add_user(UserSpec(args.name, email=args.email, phone=args.phone, password=password), now=time.time())
    print(f"user {args.name} added")
    store_clients = [c.name for c in config.radius.clients if c.first_factor == "store"]
    if password is None and store_clients:
        print(f"otp-admin: warning: {escaped(args.name)} has no password: the clients that check it against the store "
              f"({escaped(', '.join(store_clients))}) refuse every login of theirs until "
              f"`otp-admin user passwd {escaped(args.name)} --password-stdin`", file=sys.stderr)
    return 0


def set_user(args: argparse.Namespace, config: Config) -> int:
    """Contact and reply attributes in one transaction: a refused part writes nothing of the other."""
    contact = args.email is not None or args.phone is not None or args.clear_email or args.clear_phone
    reply = args.group is not None or args.clear_group or args.reply is not None or args.clear_reply
    if not (contact or reply):
        raise InputError("nothing to change: give --email, --phone, --group, --reply or one of the --clear-... options")
    for option, value in (("--email", args.email), ("--phone", args.phone)):
        if value is not None and not value.strip():
            raise InputError(f"{option}: empty (--clear-{option[2:]} removes it)")
    pairs = parse_replies(args.reply)
    now = time.time()
    with Admin(config) as admin:
        replies = reply_admin(admin.store) if reply else None
        with admin.store.transaction():
            row = admin.user(args.name)
            if contact:
                row = admin.set_contact(args.name, email=args.email, phone=args.phone, clear_email=args.clear_email,
                                        clear_phone=args.clear_phone, now=now)
            if replies is not None:
                row = replies.set_user(args.name, group=args.group, clear_group=args.clear_group, pairs=pairs,
                                       clear_reply=args.clear_reply, now=now)
                granted = replies.granted(row)
    if contact:
        print(f"user {args.name}: email {escaped(row.email or '-')}, phone {escaped(row.phone or '-')}")
    if replies is not None:
        print(f"user {args.name}: group {escaped(row.reply_group or '-')}; an Access-Accept carries "
              f"{len(granted)} reply attribute(s)")
        for line in reply_lines(granted):
            print(f"  {line}")
    return 0


def list_users(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        users = admin.users()
        counts: dict[str, int] = {}
        for token, owner in admin.tokens():
            counts[owner] = counts.get(owner, 0) + int(token.active)
    rows = [user_json(u, config, counts.get(u.name, 0)) for u in users]
    emit(args, rows, ["name", "directory", "email", "phone", "password", "group", "active_tokens", "failures",
                      "locked"])
    return 0


def show(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        user = admin.user(args.name)
        tokens = [token_json(t, owner, config) for t, owner in admin.tokens(args.name)]
        granted = reply_admin(admin.store).granted(user) if user.reply_group or user.reply else ()
        reversible = admin.has_reversible_password(args.name)
    data = user_json(user, config, sum(1 for t in tokens if t["active"]))
    data["accept_attributes"] = pairs_json(granted)
    data["reversible_password"] = reversible
    data["tokens"] = tokens
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            if key == "tokens":
                continue
            if isinstance(value, list):  # reply attributes
                print(f"{key}:" + ("" if value else " -"))
                for item in value:
                    print(f"  {escaped(item['attribute'])} = {escaped(item['value'])}")
                continue
            shown = "" if value is None else ("yes" if value else "no") if isinstance(value, bool) else value
            print(f"{key}: {escaped(shown)}")
        print_table(table_rows(tokens), ["id", "type", "algorithm", "digits", "period", "counter", "window", "active"])
    return 0


def delete(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        admin.delete_user(args.name, now=time.time())
    print(f"user {args.name} deleted")
    return 0


def unlock(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        admin.unlock_user(args.name, now=time.time())
    print(f"user {args.name} unlocked")
    return 0


def passwd(args: argparse.Namespace, config: Config) -> int:
    if not args.password_stdin:
        raise InputError("the new password is read with --password-stdin")
    password = read_password()
    with Admin(config) as admin:
        admin.set_password(args.name, password, now=time.time(), reversible=args.reversible)
    print(f"password of {args.name} set{' (reversible)' if args.reversible else ''}")
    return 0


def user_json(u: UserRow, config: Config, active_tokens: int) -> dict[str, Any]:
    now = time.time()
    state = pol.effective(pol.FailureState(u.failures, u.last_bad, u.locked_at, u.lockouts), config.policy, now)
    until = pol.locked_until(state, config.policy)
    next_lockout = pol.lockout_duration(state.lockouts + 1, config.policy)
    return {"name": u.name, "directory": bool(u.directory), "email": u.email, "phone": u.phone,
            "password": u.password_hash is not None, "group": u.reply_group, "reply": pairs_json(load_pairs(u.reply)),
            "active_tokens": active_tokens, "failures": state.failures, "locked": until is not None and now < until,
            "locked_until": None if until is None else ("until unlocked" if until == float("inf") else iso(until)),
            "lockouts_in_a_row": state.lockouts,
            "next_lockout_seconds": None if next_lockout is None else int(next_lockout), "created": iso(u.created)}
