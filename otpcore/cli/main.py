"""`otp-admin`: provisioning from the command line.

Exit 0 on success, 1 on a refused operation (unknown user, wrong code, store or key problem), 2 on bad usage;
every failure is one line on stderr and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from otpbase.version import VersionAction

from ..admin import Admin, TokenSpec, UserSpec
from ..config import Config, config_path, load_config
from ..errors import ConfigError, InputError, OtpError
from ..oath import decode_base32
from ..store import TokenRow, UserRow
from .output import escaped, format_since, print_table
from .stdin import or_stdin, read_line

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as for every other failure (argparse would print the whole usage first).
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.error("a command is required (see --help)")
    try:
        _check_utf8(args)
        if args.handler is _pam_config:  # a radius-mode host has no otp.toml: only its path is printed
            return _pam_config(args)
        config = load_config(args.config)
        return int(args.handler(args, config) or 0)
    except (InputError, ConfigError) as exc:
        print(f"otp-admin: error: {exc}", file=sys.stderr)
        return 2
    except OtpError as exc:
        print(f"otp-admin: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otp-admin audit | head`: the reader left, no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


# -- handlers ---------------------------------------------------------------------------------------------------------


def _init(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        created = admin.init()
    for what in created:
        print(f"created {what}")
    if not created:
        print("store and key already present; schema up to date")
    return 0


def _user_add(args: argparse.Namespace, config: Config) -> int:
    password = _read_password() if args.password_stdin else None
    with Admin(config) as admin:
        admin.add_user(UserSpec(args.name, email=args.email, phone=args.phone, password=password), now=time.time())
    print(f"user {args.name} added")
    return 0


def _user_list(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        users = admin.users()
        counts = {}
        for token, owner in admin.tokens():
            counts[owner] = counts.get(owner, 0) + int(token.active)
    rows = [_user_json(u, config, counts.get(u.name, 0)) for u in users]
    _emit(args, rows, ["name", "email", "phone", "password", "active_tokens", "failures", "locked"])
    return 0


def _user_show(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        user = admin.user(args.name)
        tokens = [_token_json(t, owner, config) for t, owner in admin.tokens(args.name)]
    data = _user_json(user, config, sum(1 for t in tokens if t["active"]))
    data["tokens"] = tokens
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            if key != "tokens":
                shown = "" if value is None else ("yes" if value else "no") if isinstance(value, bool) else value
                print(f"{key}: {escaped(shown)}")
        print_table(tokens, ["id", "type", "algorithm", "digits", "period", "counter", "active"])
    return 0


def _user_delete(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        admin.delete_user(args.name, now=time.time())
    print(f"user {args.name} deleted")
    return 0


def _user_unlock(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        admin.unlock_user(args.name, now=time.time())
    print(f"user {args.name} unlocked")
    return 0


def _user_passwd(args: argparse.Namespace, config: Config) -> int:
    if not args.password_stdin:
        raise InputError("the new password is read with --password-stdin")
    password = _read_password()
    with Admin(config) as admin:
        admin.set_password(args.name, password, now=time.time())
    print(f"password of {args.name} set")
    return 0


def _token_add(args: argparse.Namespace, config: Config) -> int:
    options = {"length": args.length, "alphabet": args.alphabet, "validity": args.validity,
               "max_attempts": args.max_attempts, "resend_interval": args.resend_interval}
    if args.type in ("email", "sms"):
        return _token_add_oob(args, config, options)
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
    from .. import qr as qrcode

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
    else:
        print(f"token {new.id} added for {new.user}")
        print(new.uri)
        if qr == "terminal":
            print(qrcode.render_terminal(new.uri), end="")
        elif qr != "none":
            print(f"QR code written to {qr}")
    return 0


def _token_add_oob(args: argparse.Namespace, config: Config, options: dict[str, Any]) -> int:
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
        user = admin.user(args.name)
    address = user.email if args.type == "email" else user.phone
    if args.json:
        print(json.dumps({"id": new.id, "user": new.user, "type": new.type, "address": address,
                          "options": dict(spec.options)}))
    else:
        print(f"token {new.id} added for {new.user}: codes are sent by {args.type} to {escaped(address)}")
    return 0


def _token_send(args: argparse.Namespace, config: Config) -> int:
    from ..decision import Reason, Verdict
    from ..service import Verifier

    verifier = Verifier.open(config)
    try:
        verifier.store.require_user(args.name)
        decision = verifier.send_code(args.name, door="admin", client="otp-admin", now=time.time(), force=args.force)
    finally:
        verifier.close()
    if decision.verdict is Verdict.CHALLENGE:
        print(f"code sent to {args.name}; check it with: otp-admin token verify {args.name} CODE")
        return 0
    hint = {Reason.NO_TOKEN: "the user has no active email or sms token",
            Reason.RESEND_TOO_SOON: "a code was sent moments ago (--force sends another one)",
            Reason.DELIVERY_FAILED: "delivery failed, see the log",
            Reason.LOCKED: "the user is locked (otp-admin user unlock)"}.get(decision.reason, str(decision.reason))
    print(f"otp-admin: code not sent: {hint}", file=sys.stderr)
    return 1


def _token_list(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        rows = [_token_json(t, owner, config) for t, owner in admin.tokens(args.name)]
    _emit(args, rows, ["id", "user", "type", "algorithm", "digits", "period", "counter", "active"])
    return 0


def _token_set_active(active: bool) -> Callable[[argparse.Namespace, Config], int]:
    def handler(args: argparse.Namespace, config: Config) -> int:
        with Admin(config) as admin:
            admin.set_token_active(args.id, active, now=time.time())
        print(f"token {args.id} {'enabled' if active else 'disabled'}")
        return 0

    return handler


def _token_delete(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        admin.delete_token(args.id, now=time.time())
    print(f"token {args.id} deleted")
    return 0


def _token_verify(args: argparse.Namespace, config: Config) -> int:
    from ..service import Verifier

    code = or_stdin(args.code, "code")
    if not code.strip():
        raise InputError("the code is empty")
    verifier = Verifier.open(config)
    try:
        verifier.store.require_user(args.name)
        decision = verifier.verify_code(args.name, code, door="admin", client="otp-admin", now=time.time())
    finally:
        verifier.close()
    if decision.accepted:
        print("code accepted")
        return 0
    print(f"otp-admin: code refused ({decision.reason})", file=sys.stderr)
    return 1


def _token_resync(args: argparse.Namespace, config: Config) -> int:
    from ..service import Verifier

    code1, code2 = or_stdin(args.code1, "first code"), or_stdin(args.code2, "second code")
    verifier = Verifier.open(config)
    try:
        verifier.store.require_user(args.name)
        decision = verifier.resync(args.name, code1, code2, door="admin", client="otp-admin", now=time.time())
    finally:
        verifier.close()
    if decision.accepted:
        print(f"token {decision.token_id} of {args.name} resynchronised")
        return 0
    print(f"otp-admin: codes not found in the resync range ({decision.reason})", file=sys.stderr)
    return 1


def _import(args: argparse.Namespace, config: Config) -> int:
    from ..importers import parse_records

    try:
        content = Path(args.file).read_text() if args.file != "-" else sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}") from None
    records = parse_records(args.format, content, user=args.user, issuer=args.issuer)
    with Admin(config) as admin:
        result = admin.import_users(records, now=time.time(), replace=args.replace)
    replaced = f": {result.replaced} replaced, their counters kept" if result.replaced else ""
    print(f"imported {len(records)} token(s) for {len({u.name for u, _ in records})} user(s){replaced}")
    return 0


def _audit(args: argparse.Namespace, config: Config) -> int:
    since = format_since(args.since, time.time()) if args.since else None
    with Admin(config) as admin:
        rows = admin.store.audit_rows(user=args.user, since=since)
    out = [{"time": _iso(r.time), "user": r.user, "door": r.door, "client": r.client, "result": r.result,
            "reason": r.reason} for r in rows]
    _emit(args, out, ["time", "user", "door", "client", "result", "reason"])
    return 0


def _sessions(args: argparse.Namespace, config: Config) -> int:
    with Admin(config) as admin:
        rows = admin.store.sessions(active_only=args.active, user=args.user)
    out = [{"id": r.id, "user": r.user, "client": r.client, "nas": r.nas_identifier or r.nas_address,
            "nas_address": r.nas_address, "nas_identifier": r.nas_identifier, "session_id": r.session_id,
            "framed_ip": r.framed_ip, "calling_station": r.calling_station, "start": _iso(r.start_time),
            "last_update": _iso(r.last_update), "stop": _iso(r.stop_time), "session_time": r.session_time,
            "input_octets": r.input_octets, "output_octets": r.output_octets, "terminate_cause": r.terminate_cause,
            "status": r.status} for r in rows]
    _emit(args, out, ["user", "client", "nas", "session_id", "framed_ip", "start", "stop", "input_octets",
                      "output_octets", "terminate_cause", "status"])
    return 0


def _pam_config(args: argparse.Namespace) -> int:
    from pam_module.pamconfig import auth_line, compatibility_warnings

    if args.mode == "radius" and not args.server:
        raise InputError("--mode radius needs at least one --server HOST:PORT")
    if args.mode == "radius" and not args.secret_file:
        raise InputError("--mode radius needs --secret-file PATH (the RADIUS shared secret, mode 0600)")
    config = str(config_path(args.config).absolute()) if args.mode == "local" else None
    try:
        line = auth_line(args.mode, servers=args.server or [], secret_file=args.secret_file, config=config)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    for warning in compatibility_warnings():
        print(f"otp-admin: warning: {warning}", file=sys.stderr)
    print(line)
    return 0


# -- helpers ----------------------------------------------------------------------------------------------------------


_PATH_ARGUMENTS = ("config", "file", "qr", "secret_file")  # file names may be any bytes; other text may not


def _check_utf8(args: argparse.Namespace) -> None:
    """Names, codes and addresses go to the store as text: bytes that are not UTF-8 are refused here, once."""
    for key, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if key not in _PATH_ARGUMENTS and isinstance(item, str):
                try:
                    item.encode()
                except UnicodeEncodeError:
                    shown = item.encode(errors="surrogateescape").decode(errors="backslashreplace")
                    raise InputError(f"{key.replace('_', '-')}: not valid UTF-8: '{shown}'") from None


def _token_id(text: str) -> int:
    """argparse type of a token id: a positive integer that fits the store (SQLite INTEGER)."""
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"not a token id: {text!r}")
    return int(text)


def _read_password() -> bytes:
    line = sys.stdin.buffer.readline().rstrip(b"\r\n")
    if not line:
        raise InputError("empty password on standard input")
    return line


def _iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _user_json(u: UserRow, config: Config, active_tokens: int) -> dict[str, Any]:
    from .. import policy as pol

    now = time.time()
    state = pol.effective(pol.FailureState(u.failures, u.last_bad, u.locked_at, u.lockouts), config.policy, now)
    until = pol.locked_until(state, config.policy)
    next_lockout = pol.lockout_duration(state.lockouts + 1, config.policy)
    return {"name": u.name, "email": u.email, "phone": u.phone, "password": u.password_hash is not None,
            "active_tokens": active_tokens, "failures": state.failures, "locked": until is not None and now < until,
            "locked_until": None if until is None else ("until unlocked" if until == float("inf") else _iso(until)),
            "lockouts_in_a_row": state.lockouts,
            "next_lockout_seconds": None if next_lockout is None else int(next_lockout), "created": _iso(u.created)}


def _token_json(t: TokenRow, owner: str, config: Config) -> dict[str, Any]:
    data = {"id": t.id, "user": owner, "type": t.type, "algorithm": t.algorithm, "digits": t.digits,
            "period": t.period if t.type == "totp" else None, "counter": t.counter if t.type == "hotp" else None,
            "drift": t.drift if t.type == "totp" else None, "active": t.active, "issuer": t.issuer,
            "created": _iso(t.created)}
    if t.type in ("email", "sms"):
        from .. import oob

        # The knobs in force: the token's own options over the [policy] oob_* defaults.
        settings = oob.settings_for(config.policy, oob.load_options(t.options))
        data.update(algorithm=None, digits=settings.length,
                    oob={"length": settings.length, "alphabet": settings.alphabet, "validity": settings.validity,
                         "max_attempts": settings.max_attempts, "resend_interval": settings.resend_interval,
                         "last_sent": _iso(oob.last_sent(t.options))})
    return data


def _emit(args: argparse.Namespace, rows: list[dict[str, Any]], columns: list[str]) -> None:
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows, columns)


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="otp-admin", description="Provision users and tokens of the OTP server.")
    p.add_argument("--config", help="TOML config (default: $OTP_CONFIG or /etc/otp/otp.toml)")
    p.add_argument("--version", action=VersionAction)
    sub = p.add_subparsers(metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("init", help="create the store and the sealing key (idempotent)")
    s.set_defaults(handler=_init)

    user = sub.add_parser("user", help="manage users").add_subparsers(metavar="VERB", parser_class=_Parser)
    s = user.add_parser("add", help="add a user")
    s.add_argument("name")
    s.add_argument("--email")
    s.add_argument("--phone")
    s.add_argument("--password-stdin", action="store_true", help="read the first-factor password from stdin")
    s.set_defaults(handler=_user_add)
    s = user.add_parser("list", help="list users")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_user_list)
    s = user.add_parser("show", help="show a user and their tokens")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_user_show)
    for verb, handler, text in (("delete", _user_delete, "delete a user and their tokens"),
                                ("unlock", _user_unlock, "clear a lockout and the failure count")):
        s = user.add_parser(verb, help=text)
        s.add_argument("name")
        s.set_defaults(handler=handler)
    s = user.add_parser("passwd", help="set the first-factor password")
    s.add_argument("name")
    s.add_argument("--password-stdin", action="store_true", required=True)
    s.set_defaults(handler=_user_passwd)

    token = sub.add_parser("token", help="manage tokens").add_subparsers(metavar="VERB", parser_class=_Parser)
    s = token.add_parser("add", help="add a token; prints the otpauth:// URI and QR code")
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
    s.set_defaults(handler=_token_add)
    s = token.add_parser("list", help="list tokens")
    s.add_argument("name", nargs="?")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_token_list)
    for verb, handler, text in (("disable", _token_set_active(False), "disable a token"),
                                ("enable", _token_set_active(True), "enable a token"),
                                ("delete", _token_delete, "delete a token")):
        s = token.add_parser(verb, help=text)
        s.add_argument("id", type=_token_id)
        s.set_defaults(handler=handler)
    s = token.add_parser("resync", help="resynchronise with two consecutive codes")
    s.add_argument("name")
    s.add_argument("code1", help="the first code, or - to read it from standard input (codes on the command line "
                                 "show in ps)")
    s.add_argument("code2", help="the next code, or - to read it from the next line of standard input")
    s.set_defaults(handler=_token_resync)
    s = token.add_parser("verify", help="check and consume a code (exit 0 when valid)")
    s.add_argument("name")
    s.add_argument("code", help="the code, or - to read it from standard input (codes on the command line show in ps)")
    s.set_defaults(handler=_token_verify)
    s = token.add_parser("send", help="send a code to the user's email/sms tokens now (help desk)")
    s.add_argument("name")
    s.add_argument("--force", action="store_true", help="send even if a code was sent within the resend interval")
    s.set_defaults(handler=_token_send)

    s = sub.add_parser("import", help="import users and tokens from another system (all or nothing)")
    s.add_argument("--format", required=True, choices=["csv", "google-authenticator", "oath-usersfile"])
    s.add_argument("--user", help="owner of a google-authenticator file; with other formats, import only this user")
    s.add_argument("--issuer", help="issuer recorded on the imported tokens")
    s.add_argument("--replace", action="store_true",
                   help="a token whose secret the user already holds updates that token, which keeps its counter "
                        "(default: the import is refused)")
    s.add_argument("file", help="file to import, or - for stdin")
    s.set_defaults(handler=_import)

    s = sub.add_parser("pam-config", help="print the /etc/pam.d auth line for this installation's PAM module")
    s.add_argument("--mode", required=True, choices=["local", "radius"])
    s.add_argument("--server", action="extend", nargs="+", metavar="HOST:PORT",
                   help="otp-radiusd servers, tried in order (radius mode; several after one --server, or repeated)")
    s.add_argument("--secret-file", help="file holding the RADIUS shared secret (radius mode)")
    s.set_defaults(handler=_pam_config)

    s = sub.add_parser("audit", help="show the audit trail")
    s.add_argument("--user")
    s.add_argument("--since", help="ISO date/time, unix time, or an age such as 30m, 12h, 7d")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_audit)

    s = sub.add_parser("sessions", help="list the sessions reported by RADIUS accounting")
    s.add_argument("--active", action="store_true", help="only sessions still open")
    s.add_argument("--user")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=_sessions)
    return p


if __name__ == "__main__":
    raise SystemExit(main())
