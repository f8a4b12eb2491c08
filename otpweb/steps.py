"""How a portal page runs: the session and form read, the CSRF token checked on every POST, then the page's work done
in a worker thread with a Verifier (the store, argon2 and the network never block the event loop), and the session
cookie set on the answer."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from otpcore.errors import OtpError
from otpcore.selfservice import SelfService
from otpcore.service import Verifier

from .door import DOOR, Door, client_address, log
from .forms import BadRequest, read_form
from .sessions import Session

__all__ = ["Step", "page"]

CSRF_MESSAGE = "This form has expired or did not come from this site: reload the page and try again."


@dataclass
class Step:
    """One request of the portal, inside its worker thread."""

    door: Door
    verifier: Verifier
    session: Session
    form: dict[str, str]
    source: str  # the browser's address
    now: float

    @property
    def client(self) -> str:
        """The portal's client in the audit and the throttle: one per browser address."""
        return f"portal:{self.source}"

    @property
    def door_name(self) -> str:
        return DOOR

    @property
    def service(self) -> SelfService:
        return SelfService(self.verifier.store, self.door.sealer, self.verifier.policy)

    def field(self, name: str) -> str:
        return self.form.get(name, "")

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        return self.door.pages.render(template, status=status, csrf=self.session.csrf,
                                      user=self.session.user if self.session.stage == "in" else None, **values)

    def save(self, *, stage: str, user: str | None = None, rotate: bool = False, sealed: bytes | None = None,
             keep_sealed: bool = True) -> None:
        name = user if user is not None else self.session.user
        assert name is not None
        self.door.sessions.save(self.verifier.store, self.session, user=name, stage=stage, now=self.now,
                                rotate=rotate, sealed=sealed, keep_sealed=keep_sealed)

    def end(self) -> None:
        self.door.sessions.end(self.verifier.store, self.session)


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def page(work: Callable[[Step], Response], *, post: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A route: `work(step)` in a worker thread, after the form and its CSRF token were read (POST)."""

    async def endpoint(request: Request) -> Response:
        door: Door = request.app.state.door
        session = door.sessions.of(request)
        form: dict[str, str] = {}
        if post:
            try:
                form = await read_form(request)
            except BadRequest as exc:
                return door.pages.render("message.html", status=400, error=str(exc))
            if not door.sessions.csrf_ok(session, form.get("csrf", "")):
                log.warning("portal from=%s: form refused, no valid CSRF token", client_address(request))
                refused = door.pages.render("message.html", status=403, error=CSRF_MESSAGE, csrf=session.csrf)
                door.sessions.set_cookie(refused, session)
                return refused
        source = client_address(request)

        def job(verifier: Verifier) -> Response:
            now = time.time()
            door.sessions.load(verifier.store, session, now)
            return work(Step(door, verifier, session, form, source, now))

        try:
            response = await door.portal.run(job)
        except OtpError as exc:
            log.error("portal from=%s: %s", source, type(exc).__name__)
            response = door.pages.render("message.html", status=503,
                                         error="The service cannot answer right now, try again later.")
        door.sessions.set_cookie(response, session)
        return response

    return endpoint
