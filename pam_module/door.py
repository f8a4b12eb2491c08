"""The PAM door: one login turned into a core call (local) or a RADIUS exchange (radius), and back into a PAM code.

`authenticate(pamh, argv)` takes the handle pam_python gives (or a fake one in unit tests). Return codes:
  PAM_SUCCESS          the code (and the password, where this module checks one) was right
  PAM_AUTH_ERR         wrong, replayed or expired code, wrong password, unknown user, user without a token
                       (all alike, after the same prompt: no account probing)
  PAM_MAXTRIES         local mode: the user is locked (too many wrong codes); the application should stop asking
  PAM_AUTHINFO_UNAVAIL no RADIUS server answered, no URL of the directory did (local mode, first_factor=ldap), or
                       the store / config / key cannot be used or could have been written by someone other than root
                       or the service user (pam_module.trust): never success
  PAM_IGNORE           nullok and the user has no active token (local mode): the module does not take part
  PAM_SERVICE_ERR      a bad option on the PAM line
  PAM_CONV_ERR         the application could not ask the user
Only names, verdicts and reasons are logged, never a code or a password.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from otpbase.escape import escape

from .log import ERR, NOTICE, WARNING, Log
from .options import OptionError, Options, parse_options
from .outcome import ACCEPT, CHALLENGE, LOCKED, REJECT, UNAVAILABLE, Outcome, Unavailable

TYPE_CHECKING = False  # typing itself costs a login several milliseconds: imported for type checkers only
if TYPE_CHECKING:
    from typing import Any

    from .backend_local import LocalBackend
    from .backend_radius import RadiusBackend

    Backend = LocalBackend | RadiusBackend

__all__ = ["MAX_CHALLENGES", "Outcome", "authenticate"]

MAX_CHALLENGES = 3  # challenge rounds in one login, as pam_radius_auth's max_challenge


class _ConversationFailed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _ask(pamh: Any, prompt: str) -> str:
    """One answer through the application's conversation function (echo off)."""
    try:
        response = pamh.conversation(pamh.Message(pamh.PAM_PROMPT_ECHO_OFF, prompt))
    except pamh.exception as exc:
        raise _ConversationFailed(getattr(exc, "pam_result", pamh.PAM_CONV_ERR)) from None
    if response is None or response.resp is None:
        raise _ConversationFailed(pamh.PAM_CONV_ERR)
    return str(response.resp)


def _challenge_prompt(message: str) -> str:
    message = message.strip()
    if not message:
        return "One-time password: "
    return message if message.endswith((":", "?")) else message + ": "


def _attempt(pamh: Any, opts: Options, backend: Backend, user: str, entry: str) -> Outcome:
    if opts.forward_pass:
        split = max(0, len(entry) - opts.digits)
        entry, password = entry[split:], entry[:split]
        pamh.authtok = password  # handed on to the next module (pam_unix use_first_pass), right code or not
    outcome = backend.check(user, entry)
    rounds = 0
    while outcome.kind == CHALLENGE and rounds < MAX_CHALLENGES:
        rounds += 1
        answer = _ask(pamh, _challenge_prompt(outcome.message))
        assert outcome.state is not None
        outcome = backend.answer(user, outcome.state, answer)
    return outcome


def _code_shaped(entry: str) -> bool:
    """Could this be a one-time code (TOTP/HOTP digits, or an email/SMS code)? Passwords usually are not."""
    return 4 <= len(entry) <= 10 and entry.isascii() and entry.isalnum() and (entry.isdigit() or entry.isupper())


def _client_name(service: str | None, rhost: str | None) -> str:
    return f"{service or 'pam'}:{rhost}" if rhost else (service or "pam")


def _user_name(pamh: Any) -> str:
    try:
        user = pamh.get_user(None)
    except pamh.exception as exc:
        raise _ConversationFailed(getattr(exc, "pam_result", pamh.PAM_USER_UNKNOWN)) from None
    return user or ""


def _options(pamh: Any, argv: list[str], log: Log | None) -> tuple[Options, Log] | int:
    """The PAM line's options and the log they ask for, or PAM_SERVICE_ERR for a bad line."""
    service = getattr(pamh, "service", None)
    try:
        opts = parse_options(argv[1:])
    except OptionError as exc:
        (log or Log(service))(ERR, f"bad module argument: {exc}")
        return int(pamh.PAM_SERVICE_ERR)
    if log is None:
        log = Log(service, opts.debug)
    else:
        log.debug_enabled = opts.debug
    for arg in opts.unknown:
        log(WARNING, f"unknown module argument ignored: {arg.partition('=')[0]}")
    if opts.forward_pass and opts.first_factor != "none":
        log(ERR, f"forward_pass and first_factor={opts.first_factor} exclude each other")
        return int(pamh.PAM_SERVICE_ERR)
    return opts, log


def _first_entry(pamh: Any, opts: Options, log: Log, where: str) -> tuple[str, bool] | None:
    """What the user typed, and whether it came from an earlier module; None: use_first_pass and nothing given."""
    entry = getattr(pamh, "authtok", None) if (opts.use_first_pass or opts.try_first_pass) else None
    if entry and opts.try_first_pass and not opts.forward_pass and not _code_shaped(entry):
        entry = None  # the Unix password of an earlier module, not a code: do not count it as a wrong code
    if entry:
        return str(entry), True
    if opts.use_first_pass:
        log(NOTICE, f"{where}: use_first_pass and no password from an earlier module")
        return None
    return _ask(pamh, opts.prompt_text()), False


def _login(pamh: Any, opts: Options, backend: Backend, user: str, log: Log, where: str) -> Outcome | int:
    """The conversation with the user and the backend: an Outcome, or a PAM code when it ends early."""
    backend.open()
    if opts.nullok and backend.has_token(user) is False:
        log.debug(f"{where}: no active token, nullok: ignored")
        return int(pamh.PAM_IGNORE)
    first = _first_entry(pamh, opts, log, where)
    if first is None:
        return int(pamh.PAM_AUTH_ERR)
    entry, from_stack = first
    outcome = _attempt(pamh, opts, backend, user, entry)
    if outcome.kind == REJECT and from_stack and opts.try_first_pass:
        log.debug(f"{where}: earlier password refused ({outcome.detail}), asking")
        outcome = _attempt(pamh, opts, backend, user, _ask(pamh, opts.prompt_text()))
    return outcome


def _result(pamh: Any, outcome: Outcome, log: Log, where: str) -> int:
    if outcome.kind == ACCEPT:
        log.debug(f"{where}: accepted ({outcome.detail})")
        return int(pamh.PAM_SUCCESS)
    if outcome.kind == LOCKED:
        log(NOTICE, f"{where}: user locked")
        return int(pamh.PAM_MAXTRIES)
    if outcome.kind == UNAVAILABLE:
        log(ERR, f"{where}: authentication service unavailable ({outcome.detail})")
        return int(pamh.PAM_AUTHINFO_UNAVAIL)
    log(NOTICE, f"{where}: authentication failure ({outcome.detail})")
    if outcome.message:  # a user with the right password and no token: where to enrol one (the portal)
        with contextlib.suppress(pamh.exception):  # an application that cannot show text: the login fails all the same
            pamh.conversation(pamh.Message(pamh.PAM_TEXT_INFO, outcome.message))
    return int(pamh.PAM_AUTH_ERR)


def authenticate(pamh: Any, argv: list[str], *, clock: Callable[[], float] = time.time, log: Log | None = None
                 ) -> int:
    """pam_sm_authenticate for one login. `argv[0]` is the module path, as pam_python passes it."""
    parsed = _options(pamh, argv, log)
    if isinstance(parsed, int):
        return parsed
    opts, log = parsed
    try:
        user = _user_name(pamh)
    except _ConversationFailed as exc:
        return int(exc.code)
    if not user or len(user) > 253 or any(c in user for c in "\0\n\r"):
        log(NOTICE, "no usable user name")
        return int(pamh.PAM_USER_UNKNOWN)
    service, rhost = getattr(pamh, "service", None), getattr(pamh, "rhost", None)
    where = f"user={escape(user, space=True)} rhost={escape(rhost or '', space=True)} mode={opts.mode}"
    backend: Backend
    if opts.mode == "local":  # each mode imports only its own backend
        from .backend_local import LocalBackend

        backend = LocalBackend(opts, _client_name(service, rhost), clock, rhost)
    else:
        from .backend_radius import RadiusBackend

        backend = RadiusBackend(opts, service, rhost, log)
    try:
        outcome = _login(pamh, opts, backend, user, log, where)
    except _ConversationFailed as exc:
        log(NOTICE, f"{where}: conversation failed")
        return int(exc.code)
    except Unavailable as exc:
        log(ERR, f"{where}: authentication service unavailable: {exc}")
        return int(pamh.PAM_AUTHINFO_UNAVAIL)
    finally:
        backend.close()
    return outcome if isinstance(outcome, int) else _result(pamh, outcome, log, where)
