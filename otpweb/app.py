"""The ASGI application: the routes of the API and the portal, the static files (served here: nothing comes from a
CDN), and the security headers every answer carries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import account, api, portal
from .door import Door, log
from .openapi import document
from .steps import page

__all__ = ["CSP", "create_app"]

# No script, no style or image from elsewhere, no frames, forms posted only here; the QR code is inline SVG.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
STATIC = Path(__file__).parent / "static"


class SecurityHeaders:
    """Pure ASGI middleware (Starlette's BaseHTTPMiddleware costs a task per request): the headers of every answer;
    pages and API answers are never cached (they show codes, secrets, addresses), the stylesheet may be."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
                        (b"cross-origin-opener-policy", b"same-origin")]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in self.headers if h[0] not in names]
                if not static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


def _routes() -> list[Route | Mount]:
    def get(path: str, work: object) -> Route:
        return Route(path, page(work), methods=["GET"])  # type: ignore[arg-type]

    def post(path: str, work: object) -> Route:
        return Route(path, page(work, post=True), methods=["POST"])  # type: ignore[arg-type]

    return [
        Route("/api/v1/validate/check", api.check, methods=["POST"]),
        Route("/api/v1/validate/trigger", api.trigger, methods=["POST"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        get("/", portal.home), post("/login", portal.login), post("/logout", portal.logout),
        get("/code", portal.code_page), post("/code", portal.code), post("/code/send", portal.send_code),
        get("/enrol", portal.enrol_page), post("/enrol", portal.enrol), post("/enrol/invite", portal.invite),
        post("/enrol/start", portal.start_enrolment),
        get("/tokens", account.tokens), post("/tokens/disable", account.disable),
        get("/reauth", account.reauth_page), post("/reauth", account.reauth),
        get("/profile", account.profile), post("/profile/contact", account.register_contact),
        post("/profile/confirm", account.confirm_contact),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def create_app(door: Door, *, ready: str = "") -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        door.start()
        if ready:
            log.info("%s", ready)
        try:
            yield
        finally:
            door.close()

    app = Starlette(routes=_routes(), lifespan=lifespan)
    app.state.door = door
    app.state.openapi = document()
    return SecurityHeaders(app, hsts=door.config.web.tls)
