"""Request bodies, read with a bound: the portal's url-encoded forms and the API's JSON objects."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

__all__ = ["MAX_BODY", "BadRequest", "read_form", "read_json", "text_field"]

MAX_BODY = 16_384  # no form or API call of ours comes near it


class BadRequest(Exception):
    """A body that is not what the route takes; the message is one line for the client."""


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise BadRequest(f"body too large (at most {MAX_BODY} bytes)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadRequest(f"body too large (at most {MAX_BODY} bytes)")
    return body


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body; a field given twice keeps its first value."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise BadRequest("expected a form (application/x-www-form-urlencoded)")
    try:
        pairs = parse_qsl((await _body(request)).decode(), keep_blank_values=True, strict_parsing=False,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form is not valid UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


async def read_json(request: Request) -> dict[str, Any]:
    """A JSON object."""
    body = await _body(request)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def text_field(data: dict[str, Any], name: str, *, required: bool = True, limit: int = 1024) -> str | None:
    """A string member of an API call's object."""
    value = data.get(name)
    if value is None:
        if required:
            raise BadRequest(f"missing {name!r}")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name!r} must be a string")
    if len(value) > limit or "\0" in value:
        raise BadRequest(f"{name!r} is too long or holds a NUL")
    return value
