"""`otp-admin token add|list|enable|disable|delete`: the tokens of users (codes themselves: otpadmin.codes)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otpcore import oob
from otpcore.admin import Admin, TokenSpec
from otpcore.config import Config
from otpcore.errors import InputError
from otpcore.oath import decode_base32
from otpcore.store import TokenRow

from .output import emit, escaped, iso
from .stdin import read_line

__all__ = ["register", "table_rows", "token_id", "token_json"]


def register(token: Any) -> None:
    _register_add(token)
    s = token.add_parser("list", help="list tokens")
    s.add_argument("name", nargs="?")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=list_tokens)
    for verb, handler, text in (("disable", _set_active(False), "disable a token"),
                                ("enable", _set_active(True), "enable a token"),
                                ("delete", delete, "delete a token")):
        s = token.add_parser(verb, help=text)
        s.add_argument("id", type=token_id)
        s.set_defaults(handler=handler)


def _register_add(token: Any) -> None:
    s = token.add_parser("add", help="add a token; prints the otpauth:// URI and QR code (a user of the directory "
                                     "the store does not have yet is added to it)")
    s.add_argument("name")
    s.add_argument("--type", required=True, choices=["totp", "hotp", "email", "sms"],
                   help="totp/hotp: an authenticator app; email/sms: a code sent to the user's --email/--phone")
    given = s.add_mutually_exclusive_group()
    given.add_argument("--secret", metavar="BASE32",
                       help="base32 secret (default: a new random 160-bit secret); visible to every local user in ps: "
                            "prefer --secret-stdin")
    given.add_argument("--secret-stdin", action="store_true", help="read the base32 secret from standard input")
    s.add_argument("--algorithm", default="SHA1", choices=["SHA1", "SHA256", "SHA512"])
    s.add_argument("--digits", type=int, help="6 (default), 7 or 8; for email/sms: the code length, as --length")
    s.add_argument("--period", type=int, default=30, help="TOTP time step in seconds")
    s.add_argument("--counter", type=int, default=0, help="HOTP initial counter")
    s.add_argument("--issuer", help="issuer shown by authenticator apps")
    s.add_argument("--qr", default="terminal", help="terminal | none | FILE.png | FILE.svg")
    oob_group = s.add_argument_group("email and sms tokens (default: policy.oob_* of the config)")
    oob_group.add_argument("--length", type=int, help="code length, 4 to 10")
    oob_group.add_argument("--alphabet", choices=["digits", "alphanumeric"],
                           help="digits, or letters and digits without look-alikes (no 0/O, 1/I/L)")
    oob_group.add_argument("--validity", type=int, metavar="SECONDS", help="how long a sent code is valid")
    oob_group.add_argument("--max-attempts", type=int, metavar="N", help="wrong answers a code survives")
    oob_group.add_argument("--resend-interval", type=int, metavar="SECONDS",
                           help="minimum time between two codes sent to this token")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=add)


def token_id(text: str) -> int:
    """argparse type of a token id: a positive integer that fits the store (SQLite INTEGER)."""
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"not a token id: {text!r}")
    return int(text)


def add(args: argparse.Namespace, config: Config) -> int:
    options = {"length": args.length, "alphabet": args.alphabet, "validity": args.validity,
               "max_attempts": args.max_attempts, "resend_interval": args.resend_interval}
    if args.type in oob.CHANNELS:
        return _add_oob(args, config, options)
    given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
    if given:
        raise InputError(f"{', '.join(given)}: only for --type email or sms")
    qr = args.qr
    if qr not in ("terminal", "none") and Path(qr).suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--qr must be terminal, none, FILE.png or FILE.svg, not {qr!r}")
    secret = read_line("base32 secret") if args.secret_stdin else args.secret
    spec = TokenSpec(
        type=args.type,
        secret=decode_base32(secret) if secret is not None else None,
        algorithm=args.algorithm,
        digits=args.digits if args.digits is not None else 6,
        period=args.period,
        counter=args.counter,
        issuer=args.issuer,
    ).validated()
    from otpcore import qr as qrcode

    # A QR file that cannot be written fails the command before the token is committed.
    reserved = qrcode.reserve(Path(qr)) if qr not in ("terminal", "none") else None
    try:
        with Admin(config) as admin:
            new = admin.add_token(args.name, spec, now=time.time())
    except BaseException:
        if reserved is not None:
            reserved.unlink(missing_ok=True)
        raise
    if reserved is not None:
        qrcode.save(new.uri, Path(qr), reserved)
    if args.json:
        print(json.dumps({"id": new.id, "user": new.user, "type": new.type, "uri": new.uri}))
        return 0
    print(f"token {new.id} added for {new.user}")
    print(new.uri)
    if qr == "terminal":
        print(qrcode.render_terminal(new.uri), end="")
    elif qr != "none":
        print(f"QR code written to {qr}")
    return 0


def _add_oob(args: argparse.Namespace, config: Config, options: dict[str, Any]) -> int:
    """An email or sms token: no secret and no QR code; codes go to the user's --email / --phone."""
    if args.secret is not None or args.secret_stdin:
        option = "--secret-stdin" if args.secret_stdin else "--secret"
        raise InputError(f"{option}: {args.type} tokens have no secret (their codes are made at each login)")
    if args.digits is not None and args.length is not None and args.digits != args.length:
        raise InputError("--digits and --length disagree (they are the same thing for email/sms tokens)")
    if args.digits is not None:
        options["length"] = args.digits
    spec = TokenSpec(type=args.type, issuer=args.issuer, options=options).validated()
    with Admin(config) as admin:
        new = admin.add_token(args.name, spec, now=time.time())
        email, phone = admin.contacts(args.name)
    address = email if args.type == "email" else phone
    if args.json:
        print(json.dumps({"id": new.id, "user": new.user, "type": new.type, "address": address,
                          "options": dict(spec.options)}))
    else:
        print(f"token {new.id} added for {new.user}: codes are sent by {args.type} to {escaped(address)}")
    missing = config.delivery.missing_table(args.type)
    if missing is not None:  # added all the same: the delivery may be configured after the users
        print(f"otp-admin: warning: no {missing} in {config.path}: no {args.type} code can be sent until it is "
              "configured", file=sys.stderr)
    return 0


def list_tokens(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        rows = [token_json(t, owner, config) for t, owner in admin.tokens(args.name)]
    emit(args, rows if args.json else table_rows(rows),
         ["id", "user", "type", "algorithm", "digits", "period", "counter", "window", "active"])
    return 0


def _set_active(active: bool) -> Callable[[argparse.Namespace, Config], int]:
    def handler(args: argparse.Namespace, config: Config) -> int:
        with Admin(config) as admin:
            admin.set_token_active(args.id, active, now=time.time())
        print(f"token {args.id} {'enabled' if active else 'disabled'}")
        return 0

    return handler


def delete(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        admin.delete_token(args.id, now=time.time())
    print(f"token {args.id} deleted")
    return 0


def token_json(t: TokenRow, owner: str, config: Config) -> dict[str, Any]:
    data = {"id": t.id, "user": owner, "type": t.type, "algorithm": t.algorithm, "digits": t.digits,
            "period": t.period if t.type == "totp" else None, "counter": t.counter if t.type == "hotp" else None,
            **_window(t, config), "drift": t.drift if t.type == "totp" else None, "active": t.active,
            "issuer": t.issuer, "created": iso(t.created)}
    if t.type in oob.CHANNELS:
        # The knobs in force: the token's own options over the [policy] oob_* defaults.
        settings = oob.settings_for(config.policy, oob.load_options(t.options))
        data.update(algorithm=None, digits=settings.length,
                    oob={"length": settings.length, "alphabet": settings.alphabet, "validity": settings.validity,
                         "max_attempts": settings.max_attempts, "resend_interval": settings.resend_interval,
                         "last_sent": iso(oob.last_sent(t.options))})
    return data


def table_rows(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """token_json() rows as a table shows them: a window that is the policy's says so."""
    return [{**t, "window": f"{t['window']} (policy)" if t["window_from"] == "policy" else t["window"]}
            for t in tokens]


def _window(t: TokenRow, config: Config) -> dict[str, Any]:
    """The steps (TOTP, either side) or counters (HOTP, ahead) a code is looked for, and whose setting that is: the
    token's own (kept from an import: google-authenticator's WINDOW_SIZE) or the policy's."""
    if t.type not in ("totp", "hotp"):
        return {"window": None, "window_from": None}
    if t.window is not None:
        return {"window": t.window, "window_from": "token"}
    return {"window": config.policy.totp_window if t.type == "totp" else config.policy.hotp_lookahead,
            "window_from": "policy"}
