"""`otp-admin token verify|resync|send`: codes checked and sent through the core's Verifier, as a login would be
(audited with door "admin"; the admin's terminal is not throttled as a network client is)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from otpcore import oob
from otpcore.config import Config
from otpcore.decision import Reason, Verdict
from otpcore.errors import InputError

from . import notes
from .stdin import or_stdin

if TYPE_CHECKING:  # the service itself is imported by the commands that use it
    from otpcore.service import Verifier

__all__ = ["register"]

DOOR, CLIENT = "admin", "otp-admin"


def register(token: Any) -> None:
    s = token.add_parser("resync", help="resynchronise with two consecutive codes")
    s.add_argument("name")
    s.add_argument("code1", help="the first code, or - to read it from standard input (codes on the command line "
                                 "show in ps)")
    s.add_argument("code2", help="the next code, or - to read it from the next line of standard input")
    s.set_defaults(handler=resync)
    s = token.add_parser("verify", help="check and consume a code (exit 0 when valid)")
    s.add_argument("name")
    s.add_argument("code", help="the code, or - to read it from standard input (codes on the command line show in ps)")
    s.set_defaults(handler=verify)
    s = token.add_parser("send", help="send a code to the user's email/sms tokens now (help desk)")
    s.add_argument("name")
    s.add_argument("--force", action="store_true", help="send even if a code was sent within the resend interval")
    s.set_defaults(handler=send)


@contextmanager
def _verifier(config: Config, user: str) -> Iterator[Verifier]:
    """The core's Verifier on this configuration's store, for a user who must exist (else refused, exit 1)."""
    from otpcore.service import Verifier

    verifier = Verifier.open(config)
    try:
        verifier.store.require_user(user)
        yield verifier
    finally:
        verifier.close()


def verify(args: argparse.Namespace, config: Config) -> int:
    code = or_stdin(args.code, "code")
    if not code.strip():
        raise InputError("the code is empty")
    with _verifier(config, args.name) as verifier:
        _check_shape(verifier, args.name, [code], otp_only=False)
        decision = verifier.verify_code(args.name, code, door=DOOR, client=CLIENT, now=time.time())
    if decision.accepted:
        print("code accepted")
        return 0
    return _refused(f"code refused ({decision.reason})")


def resync(args: argparse.Namespace, config: Config) -> int:
    code1, code2 = or_stdin(args.code1, "first code"), or_stdin(args.code2, "second code")
    with _verifier(config, args.name) as verifier:
        _check_shape(verifier, args.name, [code1, code2], otp_only=True)
        decision = verifier.resync(args.name, code1, code2, door=DOOR, client=CLIENT, now=time.time())
    if decision.accepted:
        print(f"token {decision.token_id} of {args.name} resynchronised")
        return 0
    return _refused(f"codes not found in the resync range ({decision.reason})")


_NOT_SENT = {
    Reason.NO_TOKEN: "the user has no active email or sms token",
    Reason.RESEND_TOO_SOON: "a code was sent moments ago (--force sends another one)",
    Reason.DELIVERY_FAILED: "delivery failed, see the log",
    Reason.LOCKED: "the user is locked (otp-admin user unlock)",
}


def send(args: argparse.Namespace, config: Config) -> int:
    with _verifier(config, args.name) as verifier:
        _, tokens = verifier.store.user_with_tokens(args.name)
        channels = {t.type for t in tokens if t.type in oob.CHANNELS}
        missing = {config.delivery.missing_table(channel) for channel in channels}
        if channels and None not in missing:  # refused before anything is sent, counted or written
            return _refused(f"code not sent: no {' or '.join(sorted(m for m in missing if m))} in {config.path}")
        decision = verifier.send_code(args.name, door=DOOR, client=CLIENT, now=time.time(), force=args.force)
    if decision.verdict is Verdict.CHALLENGE:
        print(f"code sent to {args.name}; check it with: otp-admin token verify {args.name} CODE")
        return 0
    hint = _NOT_SENT.get(decision.reason, str(decision.reason))
    if decision.reason is Reason.DELIVERY_FAILED and (why := notes.take()):  # what the delivery logged, in one line
        hint = f"delivery failed: {why[0].removeprefix('code not sent: ')}"
    return _refused(f"code not sent: {hint}")


def _check_shape(verifier: Verifier, user: str, codes: list[str], *, otp_only: bool) -> None:
    """A code that none of the user's active tokens could have made (the wrong length, letters for digits) is a
    usage error, refused before the Verifier counts it as a wrong code. The admin's own terminal only: a network
    door must not tell anyone what a user's tokens look like."""
    _, tokens = verifier.store.user_with_tokens(user)
    lengths = {t.digits for t in tokens if t.type in ("totp", "hotp")}
    sent = [] if otp_only else [oob.settings_for(verifier.policy, oob.load_options(t.options))
                                for t in tokens if t.type in oob.CHANNELS]
    if not lengths and not sent:
        return  # no token to judge by: the Verifier answers (no_token)
    for code in codes:
        if not (code.isascii() and code.isdigit() and len(code) in lengths) and not any(
                oob.looks_like_code(oob.normalize_code(code), s) for s in sent):
            shapes = {f"{n} digits" for n in lengths} | {
                f"{s.length} {'digits' if s.alphabet == 'digits' else 'letters and digits'}" for s in sent}
            raise InputError(f"not a code of {user}'s tokens, which take {' or '.join(sorted(shapes))}")


def _refused(message: str) -> int:
    print(f"otp-admin: {message}", file=sys.stderr)
    return 1
