"""The logged-in user's pages: their tokens (disable a lost one, enrol a replacement after logging in again with the
password) and their e-mail address and phone number, each changed only once a code sent to the new one came back."""

from __future__ import annotations

import hmac
import re

from starlette.responses import Response

from otpcore import oob
from otpcore.decision import Reason, Verdict
from otpcore.delivery import Sender
from otpcore.errors import InputError, NotFoundError
from otpcore.oob import Outgoing

from .door import log_decision
from .steps import Step, redirect

__all__ = ["confirm_contact", "disable", "profile", "reauth", "reauth_page", "register_contact", "tokens"]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{6,20}$")
SENDS_PER_SESSION = 5  # confirmation codes one session may have sent (to addresses of the user's choosing)


def tokens(step: Step) -> Response:
    if step.session.stage != "in" or step.session.user is None:
        return redirect("/")
    notice = step.session.data.pop("notice", "")
    if notice:
        step.save(stage="in")
    rows = step.service.tokens(step.session.user)
    return step.render("tokens.html", tokens=rows, notice=notice)


def disable(step: Step) -> Response:
    user = step.session.user
    if step.session.stage != "in" or user is None:
        return redirect("/")
    try:
        step.service.disable_token(user, int(step.field("token")), now=step.now, client=step.client,
                                   source=step.source)
    except (ValueError, NotFoundError):
        return step.render("tokens.html", status=400, tokens=step.service.tokens(user), error="No such token.")
    log_decision("disable", user, step.client, step.source, "ok", "token_disabled")
    return step.render("tokens.html", tokens=step.service.tokens(user),
                       notice="The token is disabled: its codes no longer open anything.")


def reauth_page(step: Step) -> Response:
    if step.session.stage != "in":
        return redirect("/")
    return step.render("reauth.html")


def reauth(step: Step) -> Response:
    """The password again, before a new token is enrolled (whoever borrowed an open session cannot add one)."""
    user = step.session.user
    if step.session.stage != "in" or user is None:
        return redirect("/")
    decision = step.verifier.login(user, step.field("password").encode("utf-8", "surrogatepass"),
                                   first_factor=step.door.config.web.first_factor, door=step.door_name,
                                   client=step.client, now=step.now, source=step.source)
    log_decision("reauth", user, step.client, step.source, decision.verdict.value, decision.reason.value)
    right = decision.verdict is Verdict.CHALLENGE or decision.reason in (Reason.NO_TOKEN, Reason.NO_TOKEN_ACCEPTED)
    if not right:
        status = 429 if decision.reason is Reason.THROTTLED else 401
        if decision.verdict is Verdict.LOCKED:
            step.end()
            return step.render("login.html", status=status, error="Authentication failed.")
        return step.render("reauth.html", status=status, error="Wrong password.")
    step.session.data.update(reauth=step.now, invited=True, first=False)
    step.save(stage="in", sealed=None, keep_sealed=False)
    return redirect("/enrol")


# -- contact addresses ------------------------------------------------------------------------------------------------


def profile(step: Step) -> Response:
    user = step.session.user
    if step.session.stage != "in" or user is None:
        return redirect("/")
    return _profile_view(step)


def register_contact(step: Step) -> Response:
    """A new address: a code is sent there; the address is saved when it comes back (confirm_contact)."""
    user = step.session.user
    if step.session.stage != "in" or user is None:
        return redirect("/")
    channel, address = step.field("channel"), step.field("address").strip()
    shape = _EMAIL if channel == "email" else _PHONE if channel == "sms" else None
    if shape is None or not shape.match(address):
        return _profile_view(step, status=400, error="That does not look like an " + (
            "e-mail address." if channel == "email" else "phone number."))
    row = step.verifier.store.user(user)
    if row is None or row.directory:
        return _profile_view(step, status=400, error="Your addresses are kept in the directory: change them there.")
    data = step.session.data
    if int(data.get("sends", 0)) >= SENDS_PER_SESSION:
        return _profile_view(step, status=429, error="Too many codes sent: log in again to try more.")
    settings = oob.settings_for(step.verifier.policy, {})
    sent_code = oob.generate_code(settings)
    if Sender(step.door.config.delivery).send_all([Outgoing(channel, address, user, sent_code, settings.validity)])[0]:
        return _profile_view(step, status=503, error="The code could not be sent, try again later.")
    data.update(sends=int(data.get("sends", 0)) + 1, contact={
        "channel": channel, "address": address, "expires": step.now + settings.validity, "attempts": 0,
        "hash": step.door.sealer.fingerprint(b"portal-contact", step.session.key, sent_code.encode()).hex()})
    step.save(stage="in")
    log_decision("contact", user, step.client, step.source, "challenge", f"code_sent_{channel}")
    return _profile_view(step, notice=f"A code was sent to {address}: enter it below to confirm.")


def confirm_contact(step: Step) -> Response:
    user = step.session.user
    pending = step.session.data.get("contact")
    if step.session.stage != "in" or user is None or not isinstance(pending, dict):
        return redirect("/profile")
    settings = oob.settings_for(step.verifier.policy, {})
    given = step.door.sealer.fingerprint(b"portal-contact", step.session.key,
                                         oob.normalize_code(step.field("code")).encode()).hex()
    if step.now >= pending["expires"] or pending["attempts"] >= settings.max_attempts:
        step.session.data.pop("contact")
        step.save(stage="in")
        return _profile_view(step, status=400, error="That code has expired: ask for a new one.")
    if not hmac.compare_digest(given, pending["hash"]):
        pending["attempts"] += 1
        step.save(stage="in")
        return _profile_view(step, status=400, error="Wrong code, try again.")
    step.session.data.pop("contact")
    step.save(stage="in")
    try:
        step.service.set_contact(user, pending["channel"], pending["address"], now=step.now, client=step.client,
                                 source=step.source)
    except (InputError, NotFoundError) as exc:
        return _profile_view(step, status=400, error=str(exc))
    what = "e-mail address" if pending["channel"] == "email" else "phone number"
    return _profile_view(step, notice=f"Your {what} is confirmed and saved.")


def _profile_view(step: Step, *, status: int = 200, error: str = "", notice: str = "") -> Response:
    assert step.session.user is not None
    row = step.verifier.store.user(step.session.user)
    pending = step.session.data.get("contact")
    return step.render("profile.html", status=status, error=error, notice=notice, row=row,
                       pending=pending if isinstance(pending, dict) else None)
