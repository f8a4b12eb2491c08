"""Portal sessions: a random cookie, kept in the store only as a keyed fingerprint, and the CSRF token of its forms.

Every visitor gets the cookie on their first page; a row exists only once a login has got somewhere (the first factor
passed). The CSRF token is a keyed fingerprint of the cookie, so a form posted from another site (which cannot read
the cookie, nor send it: SameSite=Strict) never carries the right one. The cookie is replaced at each step up (after
the first factor, after the code), so a cookie planted before the login is worth nothing after it.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from otpcore.seal import Sealer
from otpcore.store import PortalSessionRow, Store
from otpcore.web_config import WebConfig

__all__ = ["COOKIE", "Session", "Sessions"]

COOKIE = "otp_session"


@dataclass
class Session:
    """One visitor's session as a request sees it (`row` None: nothing in the store yet)."""

    cookie: str
    key: bytes
    csrf: str
    row: PortalSessionRow | None = None
    data: dict[str, Any] = field(default_factory=dict)
    fresh_cookie: bool = False  # to be set on the response

    @property
    def user(self) -> str | None:
        return self.row.user if self.row is not None else None

    @property
    def stage(self) -> str:
        return self.row.stage if self.row is not None else "anonymous"


class Sessions:
    def __init__(self, sealer: Sealer, web: WebConfig) -> None:
        self._sealer = sealer
        self._web = web

    def of(self, request: Request) -> Session:
        """The request's session, without its row (`load` reads it); a new cookie when it has none."""
        cookie = request.cookies.get(COOKIE, "")
        if not (20 <= len(cookie) <= 64 and cookie.isascii()):
            return self._new()
        return self._session(cookie)

    def load(self, store: Store, session: Session, now: float) -> Session:
        """The session with its row, if it has one that has not expired."""
        row = store.portal_session(session.key)
        if row is not None and now < row.expires:
            session.row = row
            session.data = json.loads(row.data) if row.data else {}
        return session

    def save(self, store: Store, session: Session, *, user: str, stage: str, now: float, rotate: bool = False,
             sealed: bytes | None = None, keep_sealed: bool = True) -> Session:
        """Write the session's row (with `rotate`, under a new cookie: the old one is forgotten). Its lifetime runs
        from the first factor: session_seconds, whatever happens after."""
        created = session.row.created if session.row is not None else now
        if sealed is None and keep_sealed and session.row is not None:
            sealed = session.row.sealed
        if rotate:
            store.delete_portal_session(session.key)
            fresh = self._new()
            session.cookie, session.key, session.csrf, session.fresh_cookie = (fresh.cookie, fresh.key, fresh.csrf,
                                                                               True)
            sealed = None  # sealed to the old key: it would not open
        row = PortalSessionRow(session.key, user, stage, created, created + self._web.session_seconds,
                               json.dumps(session.data) if session.data else None, sealed)
        store.put_portal_session(row)
        session.row = row
        return session

    def end(self, store: Store, session: Session) -> None:
        store.delete_portal_session(session.key)
        session.row, session.data = None, {}

    def csrf_ok(self, session: Session, given: str) -> bool:
        return bool(given) and hmac.compare_digest(session.csrf.encode(), given.encode("utf-8", "replace"))

    def seal(self, session: Session, secret: bytes) -> bytes:
        return self._sealer.seal(secret, b"portal-enrolment:" + session.key)

    def unseal(self, session: Session) -> bytes | None:
        if session.row is None or session.row.sealed is None:
            return None
        return self._sealer.open(session.row.sealed, b"portal-enrolment:" + session.key)

    def set_cookie(self, response: Response, session: Session) -> None:
        if session.fresh_cookie:
            response.set_cookie(COOKIE, session.cookie, httponly=True, samesite="strict",
                                secure=self._web.secure_cookies, path="/")

    def _new(self) -> Session:
        session = self._session(secrets.token_urlsafe(32))
        session.fresh_cookie = True
        return session

    def _session(self, cookie: str) -> Session:
        raw = cookie.encode()
        return Session(cookie, self._sealer.fingerprint(b"portal-session", raw),
                       self._sealer.fingerprint(b"portal-csrf", raw).hex()[:40])
