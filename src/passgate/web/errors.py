"""What an error looks like on the wire, for FastAPI's exception handlers (web/app.py) and the lanes
(web/lanes.py) alike: `{"error": "<for people>", "code": "<stable>"}` with a 4xx, a 503 with
`Retry-After` (a short page for a browser opening a page), and a 500 that says nothing more."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, JSONResponse

from passgate.errors import PassgateError, ServiceUnavailable

log = logging.getLogger("passgate")
INTERNAL = {"error": "Something went wrong on our side.", "code": "internal_error"}


def error_response(connection: HTTPConnection, exc: PassgateError) -> JSONResponse | HTMLResponse:
    if exc.detail:
        log.info("%s: %s", exc.code, exc.detail.encode("unicode_escape").decode("ascii")[:300])
    if isinstance(exc, ServiceUnavailable):
        return _unavailable(connection, exc)
    return JSONResponse(exc.to_json(), status_code=exc.status)


def unexpected_response(exc: BaseException) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse(INTERNAL, status_code=500)


def _unavailable(connection: HTTPConnection, exc: ServiceUnavailable) -> JSONResponse | HTMLResponse:
    """503 with `Retry-After`: JSON for the API, a short page for a browser opening a page."""
    headers = {"retry-after": str(exc.retry_after), "cache-control": "no-store"}
    method = connection.scope.get("method")
    if method == "GET" and "text/html" in connection.headers.get("accept", ""):
        title = "Try again in a moment"
        body = (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body><main><h1>{title}</h1><p>{escape(exc.message)}</p><p><code>{exc.code}</code></p>"
            "</main></body></html>"
        )
        return HTMLResponse(body, status_code=exc.status, headers=headers)
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


def describe_validation(errors: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A 400's body for a request body that failed its schema (pydantic's errors, first one told)."""
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return {"error": "The body is not valid JSON.", "code": "invalid_json"}
    field = ".".join(location) or "body"
    messages = {
        "missing": f"{field} is required.",
        "extra_forbidden": f"{field} is not a known field.",
        "string_pattern_mismatch": f"{field} is not valid base64url.",
        "string_too_long": f"{field} is too long.",
    }
    message = messages.get(kind, f"{field} is not valid ({kind or 'invalid'}).")
    return {"error": message, "code": "invalid_request"}
