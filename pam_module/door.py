"""The PAM door: one login turned into a core call (local) or a RADIUS exchange (radius), and back into a PAM code.

`authenticate(pamh, argv)` takes the handle pam_python gives (or a fake one in unit tests). Return codes:
  PAM_SUCCESS          the code (and the password, where this module checks one) was right
  PAM_AUTH_ERR         wrong, replayed or expired code, wrong password, unknown user, user without a token
                       (all alike, after the same prompt: no account probing)
  PAM_MAXTRIES         local mode: the user is locked (too many wrong codes); the application should stop asking
  PAM_AUTHINFO_UNAVAIL no RADIUS server answered, or the store / config / key cannot be used or could have been
                       written by someone other than root or the service user (pam_module.trust): never success
  PAM_IGNORE           nullok and the user has no active token (local mode): the module does not take part
  PAM_SERVICE_ERR      a bad option on the PAM line
  PAM_CONV_ERR         the application could not ask the user
Only names, verdicts and reasons are logged, never a code or a password.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from otpbase.escape import escape

from .log import ERR, NOTICE, WARNING, Log
from .options import OptionError, Options, parse_options

TYPE_CHECKING = False  # typing itself costs a login several milliseconds: imported for type checkers only
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MAX_CHALLENGES", "Outcome", "authenticate"]

MAX_CHALLENGES = 3  # challenge rounds in one login, as pam_radius_auth's max_challenge
DOOR = "pam"

ACCEPT, REJECT, CHALLENGE, LOCKED, UNAVAILABLE = "accept", "reject", "challenge", "locked", "unavailable"


class Outcome:
    __slots__ = ("detail", "kind", "message", "state")

    def __init__(self, kind: str, detail: str = "", message: str = "", state: bytes | None = None) -> None:
        self.kind = kind
        self.detail = detail  # for the log: a reason or the server that answered (never a code)
        self.message = message  # challenge prompt
        self.state = state


class _ConversationFailed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Unavailable(Exception):
    """The backend cannot be used (config, key, store, secret file, all servers down)."""


# -- backends ---------------------------------------------------------------------------------------------------------


class _Local:
    """Verifies against the shared store with the core."""

    def __init__(self, opts: Options, client: str, clock: Callable[[], float], rhost: str | None = None) -> None:
        self.opts = opts
        self.client = client
        self.clock = clock
        self.rhost = rhost  # the audit's source of each decision
        self.verifier: Any = None

    def open(self) -> None:
        from otpcore.errors import OtpError
        from otpcore.service import Verifier

        from .trust import Untrusted

        try:
            self.verifier = Verifier.open(_trusted_config(self.opts.config))
        except (Untrusted, OtpError) as exc:
            raise _Unavailable(str(exc)) from None
        except OSError as exc:
            raise _Unavailable(f"store: {exc}") from None

    def has_token(self, user: str) -> bool | None:
        return bool(self._guarded(self.verifier.has_active_token, user))

    def check(self, user: str, entry: str) -> Outcome:
        if self.opts.first_factor == "store":
            return self._decide(self.verifier.login, user, entry.encode("utf-8", "surrogateescape"),
                                first_factor="store")
        return self._decide(self.verifier.verify_code, user, "".join(entry.split()))

    def answer(self, user: str, state: bytes, answer: str) -> Outcome:
        return self._decide(self.verifier.answer_challenge, state, user, "".join(answer.split()).encode())

    def close(self) -> None:
        if self.verifier is not None:
            self.verifier.close()
            self.verifier = None

    def _decide(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
        from otpcore.decision import Reason, Verdict

        decision = self._guarded(call, *args, door=DOOR, client=self.client, now=self.clock(), source=self.rhost,
                                 **kwargs)
        reason = str(decision.reason)
        if decision.verdict is Verdict.ACCEPT:
            return Outcome(ACCEPT, reason)
        if decision.verdict is Verdict.LOCKED:
            return Outcome(LOCKED, reason)
        if decision.verdict is Verdict.CHALLENGE and decision.state:
            return Outcome(CHALLENGE, reason, decision.message, decision.state)
        if decision.reason in (Reason.FIRST_FACTOR_UNAVAILABLE, Reason.DELIVERY_FAILED):
            return Outcome(UNAVAILABLE, reason)
        return Outcome(REJECT, reason)

    @staticmethod
    def _guarded(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from otpcore.errors import OtpError
        try:
            return call(*args, **kwargs)
        except OtpError as exc:
            raise _Unavailable(str(exc)) from None


def _trusted_config(path: str) -> Any:
    """The config at `path` (never one the environment names: setuid programs keep their caller's), with the store
    and key it names, each checked by .trust and then used by its real path. Raises Untrusted."""
    import dataclasses
    from pathlib import Path

    from otpcore.config import load_config

    from .trust import trusted_owners, trusted_path

    owners = trusted_owners()
    config = load_config(trusted_path(path, "config file", owners))
    store = config.store
    if store.url is None:
        sqlite = trusted_path(store.path, "store file", owners)
        for suffix in ("-wal", "-shm"):  # SQLite reads these as part of the store
            if os.path.lexists(sqlite + suffix):
                trusted_path(sqlite + suffix, "store file", owners)
        store = dataclasses.replace(store, path=Path(sqlite))
    elif store.password_file is not None:  # PostgreSQL: its access rules guard the database, a file its password
        store = dataclasses.replace(store, password_file=Path(trusted_path(store.password_file, "password file",
                                                                           owners)))
    key = trusted_path(store.key_file, "key file", owners)
    return dataclasses.replace(config, store=dataclasses.replace(store, key_file=Path(key)))


class _Radius:
    """Asks otp-radiusd (or any RADIUS server) with the module's own small client."""

    def __init__(self, opts: Options, service: str | None, rhost: str | None, log: Log) -> None:
        self.opts = opts
        self.rhost = rhost
        self.log = log
        self.nas_identifier = opts.nas_identifier or service or "pam_otp"
        self.client: Any = None

    def open(self) -> None:
        from .radius_client import RadiusClient, RadiusError

        assert self.opts.secret_file is not None
        try:
            with open(self.opts.secret_file, "rb") as fh:
                secret = fh.readline().strip()
        except OSError as exc:
            raise _Unavailable(f"secret_file {self.opts.secret_file}: {exc.strerror}") from None
        try:
            self.client = RadiusClient(self.opts.servers, secret, timeout=self.opts.timeout,
                                       retries=self.opts.retries, nas_identifier=self.nas_identifier)
        except RadiusError as exc:
            raise _Unavailable(str(exc)) from None

    def has_token(self, user: str) -> bool | None:
        return None  # the server decides (policy.no_token); nullok has no effect in radius mode

    def check(self, user: str, entry: str) -> Outcome:
        return self._ask(user, entry, None)

    def answer(self, user: str, state: bytes, answer: str) -> Outcome:
        return self._ask(user, answer, state)

    def close(self) -> None:
        self.client = None

    def _ask(self, user: str, password: str, state: bytes | None) -> Outcome:
        from otpbase.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE

        from .radius_client import RadiusError, RadiusUnavailable

        try:
            reply = self.client.authenticate(user, password.encode("utf-8", "surrogateescape"), state=state,
                                             calling_station=self.rhost)
        except RadiusUnavailable:
            raise _Unavailable("; ".join(self.client.failures)) from None
        except RadiusError as exc:  # a user name or password too long for RADIUS: refused, not a fault
            return Outcome(REJECT, str(exc))
        for failure in self.client.failures:
            self.log(WARNING, f"RADIUS server {failure}, failed over")
        where = f"server={reply.server[0]}:{reply.server[1]}"
        if reply.code == ACCESS_ACCEPT:
            return Outcome(ACCEPT, where)
        if reply.code == ACCESS_CHALLENGE:
            if not reply.state:
                return Outcome(REJECT, f"{where} Access-Challenge without State")
            return Outcome(CHALLENGE, where, reply.message, reply.state)
        return Outcome(REJECT, where)


# -- the flow ---------------------------------------------------------------------------------------------------------


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


def _attempt(pamh: Any, opts: Options, backend: _Local | _Radius, user: str, entry: str) -> Outcome:
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


def authenticate(pamh: Any, argv: list[str], *, clock: Callable[[], float] = time.time, log: Log | None = None
                 ) -> int:
    """pam_sm_authenticate for one login. `argv[0]` is the module path, as pam_python passes it."""
    service = getattr(pamh, "service", None)
    try:
        opts = parse_options(argv[1:])
    except OptionError as exc:
        (log or Log(service))(ERR, f"bad module argument: {exc}")
        return pamh.PAM_SERVICE_ERR
    if log is None:
        log = Log(service, opts.debug)
    else:
        log.debug_enabled = opts.debug
    for arg in opts.unknown:
        log(WARNING, f"unknown module argument ignored: {arg.partition('=')[0]}")
    if opts.forward_pass and opts.first_factor == "store":
        log(ERR, "forward_pass and first_factor=store exclude each other")
        return pamh.PAM_SERVICE_ERR

    try:
        user = _user_name(pamh)
    except _ConversationFailed as exc:
        return exc.code
    if not user or len(user) > 253 or any(c in user for c in "\0\n\r"):
        log(NOTICE, "no usable user name")
        return pamh.PAM_USER_UNKNOWN
    rhost = getattr(pamh, "rhost", None)
    where = f"user={escape(user, space=True)} rhost={escape(rhost or '', space=True)} mode={opts.mode}"

    backend: _Local | _Radius
    if opts.mode == "local":
        backend = _Local(opts, _client_name(service, rhost), clock, rhost)
    else:
        backend = _Radius(opts, service, rhost, log)
    try:
        backend.open()
        if opts.nullok and backend.has_token(user) is False:
            log.debug(f"{where}: no active token, nullok: ignored")
            return pamh.PAM_IGNORE

        from_stack = False
        entry = getattr(pamh, "authtok", None) if (opts.use_first_pass or opts.try_first_pass) else None
        if entry and opts.try_first_pass and not opts.forward_pass and not _code_shaped(entry):
            entry = None  # the Unix password of an earlier module, not a code: do not count it as a wrong code
        if entry:
            from_stack = True
        elif opts.use_first_pass:
            log(NOTICE, f"{where}: use_first_pass and no password from an earlier module")
            return pamh.PAM_AUTH_ERR
        else:
            entry = _ask(pamh, opts.prompt_text())
        outcome = _attempt(pamh, opts, backend, user, entry)
        if outcome.kind == REJECT and from_stack and opts.try_first_pass:
            log.debug(f"{where}: earlier password refused ({outcome.detail}), asking")
            outcome = _attempt(pamh, opts, backend, user, _ask(pamh, opts.prompt_text()))
    except _ConversationFailed as exc:
        log(NOTICE, f"{where}: conversation failed")
        return exc.code
    except _Unavailable as exc:
        log(ERR, f"{where}: authentication service unavailable: {exc}")
        return pamh.PAM_AUTHINFO_UNAVAIL
    finally:
        backend.close()

    if outcome.kind == ACCEPT:
        log.debug(f"{where}: accepted ({outcome.detail})")
        return pamh.PAM_SUCCESS
    if outcome.kind == LOCKED:
        log(NOTICE, f"{where}: user locked")
        return pamh.PAM_MAXTRIES
    if outcome.kind == UNAVAILABLE:
        log(ERR, f"{where}: authentication service unavailable ({outcome.detail})")
        return pamh.PAM_AUTHINFO_UNAVAIL
    log(NOTICE, f"{where}: authentication failure ({outcome.detail})")
    return pamh.PAM_AUTH_ERR
