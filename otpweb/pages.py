"""The portal's pages: Jinja2 templates (autoescaped) and QR codes as inline SVG (segno), nothing from elsewhere."""

from __future__ import annotations

import io
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from otpcore.web_config import WebConfig

__all__ = ["Pages", "qr_svg"]


def qr_svg(uri: str, scale: int) -> Markup:
    """The QR code of `uri` as an <svg> element, its title the account for screen readers."""
    import segno

    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=scale, border=2, xmldecl=False, svgns=True,
                                    svgclass="qr", lineclass=None, title="QR code of your new token")
    return Markup(out.getvalue().decode())  # segno's own markup; the URI inside it is escaped by segno


class Pages:
    def __init__(self, web: WebConfig) -> None:
        self.web = web
        self._env = jinja2.Environment(loader=jinja2.PackageLoader("otpweb", "templates"),
                                       autoescape=jinja2.select_autoescape(default=True), trim_blocks=True,
                                       lstrip_blocks=True, undefined=jinja2.StrictUndefined)

    def render(self, name: str, *, status: int = 200, **values: Any) -> Response:
        values.setdefault("notice", "")
        values.setdefault("error", "")
        values.setdefault("user", None)
        html = self._env.get_template(name).render(issuer=self.web.issuer, **values)
        return HTMLResponse(html, status_code=status)
