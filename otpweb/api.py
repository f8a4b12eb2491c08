"""The validate API: applications check a user's password and code (`/api/v1/validate/check`) and have a code sent
(`/api/v1/validate/trigger`), as privacyIDEA's /validate/check and OWASP jOTP's send-then-verify flow do.

Every decision is 200 with its result; a missing or wrong API key is 401, a malformed body 400 with one line saying
what is wrong, a client throttled for its failed logins 429, a store that cannot be used 503. The decisions are the
core's: the same lockout, replay protection and audit as RADIUS and PAM.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from otpcore.decision import Decision, Reason, Verdict
from otpcore.errors import OtpError
from otpcore.service import Verifier
from otpcore.web_config import WebApp

from .door import DOOR, Door, client_address, log_decision
from .forms import BadRequest, read_json, text_field

__all__ = ["check", "trigger"]

THROTTLED_MESSAGE = "Too many failed logins from this application, try again later"
_RESULTS = {Verdict.ACCEPT: "accept", Verdict.CHALLENGE: "challenge", Verdict.REJECT: "reject",
            Verdict.LOCKED: "reject"}
_NO_STORE = {"Cache-Control": "no-store"}


async def check(request: Request) -> Response:
    door: Door = request.app.state.door
    app = _caller(request, door)
    if app is None:
        return _unauthorised()
    try:
        data = await read_json(request)
        _only(data, {"user", "pass", "transaction_id"})
        user = _user(data)
        password = (text_field(data, "pass") or "").encode()
        transaction = text_field(data, "transaction_id", required=False, limit=64)
        state = _state(transaction) if transaction is not None else None
    except BadRequest as exc:
        return _bad(str(exc))
    source = client_address(request)
    try:
        if state is not None:
            decision = await door.api.run(_call(lambda v, now: v.answer_challenge(
                state, user, password, door=DOOR, client=app.name, now=now, source=source)))
        elif app.first_factor == "none" and password:
            decision = await door.fast.login(user, password, client=app.name, source=source)
        else:
            decision = await door.api.run(_call(lambda v, now: v.login(
                user, password, first_factor=app.first_factor, door=DOOR, client=app.name, now=now, source=source)))
    except OtpError as exc:
        return _unavailable(exc)
    return _answer("check", decision, app, source)


async def trigger(request: Request) -> Response:
    door: Door = request.app.state.door
    app = _caller(request, door)
    if app is None:
        return _unauthorised()
    try:
        data = await read_json(request)
        _only(data, {"user"})
        user = _user(data)
    except BadRequest as exc:
        return _bad(str(exc))
    source = client_address(request)
    try:  # an empty code: the core sends the user's email/sms code, and answers every name the same way
        decision = await door.api.run(_call(lambda v, now: v.verify_code(user, "", door=DOOR, client=app.name,
                                                                         now=now, source=source)))
    except OtpError as exc:
        return _unavailable(exc)
    return _answer("trigger", decision, app, source)


def _call(call: Callable[[Verifier, float], Decision]) -> Callable[[Verifier], Decision]:
    return lambda verifier: call(verifier, time.time())


def _caller(request: Request, door: Door) -> WebApp | None:
    """The application whose bearer key the request carries (every key compared, in constant time)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        return None
    given = key.strip().encode("utf-8", "replace")
    found = None
    for app in door.config.web.apps:
        if hmac.compare_digest(app.key, given):
            found = app
    return found


def _only(data: dict[str, Any], allowed: set[str]) -> None:
    for name in data:
        if name not in allowed:
            raise BadRequest(f"unknown member {name[:40]!r} (allowed: {', '.join(sorted(allowed))})")


def _user(data: dict[str, Any]) -> str:
    user = text_field(data, "user", limit=253) or ""
    if not user.strip():
        raise BadRequest("'user' must not be empty")
    return user


def _state(transaction: str) -> bytes:
    try:
        state = bytes.fromhex(transaction)
    except ValueError:
        raise BadRequest("'transaction_id' is not one of ours (hexadecimal)") from None
    if not 8 <= len(state) <= 32:
        raise BadRequest("'transaction_id' is not one of ours (its length)")
    return state


def _answer(what: str, decision: Decision, app: WebApp, source: str) -> Response:
    log_decision(what, decision.user, app.name, source, decision.verdict.value, decision.reason.value)
    if decision.reason is Reason.THROTTLED:
        return JSONResponse({"result": "reject", "message": THROTTLED_MESSAGE}, status_code=429,
                            headers={"Retry-After": "60", **_NO_STORE})
    body: dict[str, Any] = {"result": _RESULTS[decision.verdict], "message": decision.message}
    if decision.verdict is Verdict.CHALLENGE and decision.state:
        body["transaction_id"] = decision.state.hex()
    return JSONResponse(body, headers=_NO_STORE)


def _unauthorised() -> Response:
    return JSONResponse({"error": "missing or wrong API key (Authorization: Bearer KEY)"}, status_code=401,
                        headers={"WWW-Authenticate": 'Bearer realm="otp-web"', **_NO_STORE})


def _bad(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400, headers=_NO_STORE)


def _unavailable(exc: OtpError) -> Response:
    log_decision("api", "-", "-", "-", "error", type(exc).__name__)
    return JSONResponse({"error": "the service cannot decide now, try again later"}, status_code=503,
                        headers=_NO_STORE)
