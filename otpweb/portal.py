"""The portal's login and enrolment: the password (the configured first factor), then the code; and for a user with
no token yet, when self_enrollment allows it, the enrolment of a first one (after an enrolment code of `otp-admin user
invite`, with self_enrollment = "invite").

Stages of a session: "code" (the password was right: the code is asked for), "enrol" (the password was right and the
user has no token), "in" (logged in). The cookie changes at each stage.
"""

from __future__ import annotations

from starlette.responses import Response

from otpcore.decision import Decision, Reason, Verdict
from otpcore.errors import InputError, NotFoundError
from otpcore.service import REJECT_MESSAGE
from otpcore.uri import otpauth_uri

from .door import log_decision
from .pages import qr_svg
from .steps import Step, redirect

__all__ = ["code", "code_page", "enrol", "enrol_page", "home", "invite", "login", "logout", "send_code",
           "start_enrolment"]

NO_ENROLMENT = "You have no token yet. Ask your administrator for one."
THROTTLED = "Too many failed logins from your address: wait a minute and try again."
REAUTH_SECONDS = 300  # a re-login opens the enrolment of a replacement token for this long


def home(step: Step) -> Response:
    stage = step.session.stage
    if stage == "in":
        return redirect("/tokens")
    if stage in ("code", "enrol"):
        return redirect(f"/{stage}")
    return step.render("login.html")


def login(step: Step) -> Response:
    user, password = step.field("user").strip(), step.field("password")
    if not user or not password:
        return step.render("login.html", status=400, error="Enter your user name and password.", name=user)
    step.verifier.store.purge_portal_sessions(step.now)
    decision = step.verifier.login(user, password.encode("utf-8", "surrogatepass"),
                                   first_factor=step.door.config.web.first_factor, door=step.door_name,
                                   client=step.client, now=step.now, source=step.source)
    _log(step, "login", decision)
    if decision.verdict is Verdict.CHALLENGE and decision.state:
        step.session.data = {"state": decision.state.hex(), "message": decision.message}
        step.save(stage="code", user=user, rotate=True)
        return redirect("/code")
    if _password_right_no_token(decision):
        if step.door.config.web.self_enrollment == "off":
            return step.render("login.html", status=403, error=NO_ENROLMENT, name=user)
        step.session.data = {"first": True, "invited": step.door.config.web.self_enrollment != "invite"}
        step.save(stage="enrol", user=user, rotate=True)
        return redirect("/enrol")
    if decision.verdict is Verdict.ACCEPT:  # password + code typed in the password field
        step.session.data = {}
        step.save(stage="in", user=user, rotate=True)
        return redirect("/tokens")
    return _refused(step, decision, "login.html", name=user)


def code_page(step: Step) -> Response:
    if step.session.stage != "code":
        return redirect("/")
    return step.render("code.html", message=step.session.data.get("message", ""))


def code(step: Step) -> Response:
    session = step.session
    if session.stage != "code" or session.user is None:
        return redirect("/")
    state = bytes.fromhex(session.data.get("state", ""))
    decision = step.verifier.answer_challenge(state, session.user, "".join(step.field("code").split()).encode(),
                                              door=step.door_name, client=step.client, now=step.now,
                                              source=step.source)
    _log(step, "code", decision)
    if decision.verdict is Verdict.ACCEPT:
        session.data = {}
        step.save(stage="in", rotate=True)
        return redirect("/tokens")
    if decision.verdict is Verdict.CHALLENGE and decision.state:  # a wrong e-mail/SMS code: it may be tried again
        session.data = {"state": decision.state.hex(), "message": decision.message}
        step.save(stage="code")
        return step.render("code.html", status=400, message=decision.message, error="Wrong code, try again.")
    step.end()
    return _refused(step, decision, "login.html")


def send_code(step: Step) -> Response:
    """"Send me a code": a code to the user's e-mail address or phone (the same answer whether they have one)."""
    session = step.session
    if session.stage != "code" or session.user is None:
        return redirect("/")
    decision = step.verifier.verify_code(session.user, "", door=step.door_name, client=step.client, now=step.now,
                                         source=step.source)
    _log(step, "send", decision)
    if decision.verdict is Verdict.CHALLENGE and decision.state:
        session.data = {"state": decision.state.hex(), "message": decision.message}
        step.save(stage="code")
        return step.render("code.html", message=decision.message, notice="If you have an e-mail address or phone "
                           "registered, a code is on its way.")
    return step.render("code.html", status=429 if decision.reason is Reason.THROTTLED else 200,
                       message=session.data.get("message", ""), error=decision.message)


def logout(step: Step) -> Response:
    step.end()
    return step.render("login.html", notice="You are logged out.")


# -- enrolment --------------------------------------------------------------------------------------------------------


def may_enrol(step: Step) -> bool:
    """A first token after the first factor (stage enrol), or a replacement after a re-login (stage in)."""
    data = step.session.data
    if step.session.stage == "enrol":
        return True
    return step.session.stage == "in" and step.now - float(data.get("reauth", 0)) < REAUTH_SECONDS


def enrol_page(step: Step) -> Response:
    if not may_enrol(step):
        return redirect("/")
    if not step.session.data.get("invited"):
        return step.render("invite.html")
    return _enrol_view(step)


def invite(step: Step) -> Response:
    session = step.session
    if session.stage != "enrol" or session.user is None:
        return redirect("/")
    if step.service.redeem_invite(session.user, step.field("invite"), now=step.now, client=step.client,
                                  source=step.source):
        session.data["invited"] = True
        step.save(stage="enrol")
        return redirect("/enrol")
    return step.render("invite.html", status=400, error="This enrolment code is wrong, used or expired.")


def start_enrolment(step: Step) -> Response:
    """The type chosen: a new secret, kept sealed in the session until its first code proves it."""
    if not may_enrol(step) or not step.session.data.get("invited"):
        return redirect("/")
    kind = step.field("type")
    types = step.door.config.web.enrollment_types
    if kind not in types:
        return step.render("message.html", status=400, error="This token type cannot be enrolled here.")
    if kind in ("email", "sms"):
        return _enrol_channel(step, kind)
    step.session.data["kind"] = kind
    step.save(stage=step.session.stage, sealed=step.door.sessions.seal(step.session, step.service.new_secret()))
    return redirect("/enrol")


def enrol(step: Step) -> Response:
    session = step.session
    secret = step.door.sessions.unseal(session) if may_enrol(step) else None
    if secret is None or session.user is None or not session.data.get("invited"):
        return redirect("/")
    kind = str(session.data.get("kind", "totp"))
    web = step.door.config.web
    done = step.service.enrol(session.user, kind, secret, step.field("code"), issuer=web.issuer,
                              first=session.stage == "enrol", directory_user=web.first_factor == "ldap",
                              now=step.now, client=step.client, source=step.source)
    if done is None:
        return _enrol_view(step, error="That is not the code your app shows now: check the time on your phone and "
                                       "try again.", status=400)
    log_decision("enrol", session.user, step.client, step.source, "ok", f"token_enrolled_{kind}")
    session.data = {"notice": "Your token is active: from now on, log in with your password and its code."}
    step.save(stage="in", rotate=True, keep_sealed=False)
    return redirect("/tokens")


def _enrol_view(step: Step, *, error: str = "", status: int = 200) -> Response:
    session = step.session
    secret = step.door.sessions.unseal(session)
    web = step.door.config.web
    if secret is None or session.user is None:
        return step.render("enrol_choose.html", types=web.enrollment_types, status=status, error=error)
    kind = str(session.data.get("kind", "totp"))
    uri = otpauth_uri(kind=kind, account=session.user, secret=secret, issuer=web.issuer)
    response = step.render("enrol.html", qr=qr_svg(uri, web.qr_scale), uri=uri, kind=kind, status=status,
                           error=error)
    response.headers["Cache-Control"] = "no-store"
    return response


def _enrol_channel(step: Step, channel: str) -> Response:
    session = step.session
    assert session.user is not None
    try:
        step.service.enrol_channel(session.user, channel, now=step.now, client=step.client, source=step.source)
    except (InputError, NotFoundError):
        return _enrol_view(step, status=400, error="Register and confirm your " + (
            "e-mail address" if channel == "email" else "phone number") + " first (Profile), then choose it here.")
    session.data = {"notice": "Codes will be sent to you: from now on, log in with your password and such a code."}
    step.save(stage="in", rotate=True, keep_sealed=False)
    return redirect("/tokens")


def _password_right_no_token(decision: Decision) -> bool:
    return (decision.verdict is Verdict.REJECT and decision.reason is Reason.NO_TOKEN) or (
        decision.verdict is Verdict.ACCEPT and decision.reason is Reason.NO_TOKEN_ACCEPTED)


def _refused(step: Step, decision: Decision, template: str, **values: str) -> Response:
    if decision.reason is Reason.THROTTLED:
        return step.render(template, status=429, error=THROTTLED, **values)
    return step.render(template, status=401, error=REJECT_MESSAGE + ".", **values)


def _log(step: Step, what: str, decision: Decision) -> None:
    log_decision(what, decision.user, step.client, step.source, decision.verdict.value, decision.reason.value)
