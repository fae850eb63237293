"""One pure-ASGI middleware for every request: body size limit, cross-site request refusal, and the
security headers. Pure ASGI because it runs on the hot paths. It wraps the whole middleware stack
(`web/app.py`), so its own refusals and Starlette's last-resort 500 carry the headers too; the answers
`passgate serve` writes before the app (`web/server.py`) take theirs from `answer_headers`."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passgate.config import Settings

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_MESSAGE = 64 * 1024  # bytes of one WebSocket message (`passgate serve` gives it to the WebSocket layer)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
DOCS_CSP = (  # Swagger UI (served locally) sets inline styles
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (a route may set its own value of one; the guard adds the
    content security policy and, under `/auth`, `Cache-Control: no-store` by path)."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
    ]
    if settings.secure_cookies:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


def answer_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    """The full set for an error answer written outside the app: what the guard would add to it."""
    return [
        *security_headers(settings),
        (b"content-security-policy", CSP.encode()),
        (b"cache-control", b"no-store"),
    ]


def _error(status: int, message: str, code: str) -> tuple[Message, Message]:
    body = json.dumps({"error": message, "code": code}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyTooLarge(Exception):
    pass


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.limit = settings.max_body_bytes
        self.origins = frozenset(settings.origins)
        self.headers = security_headers(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *self._headers_for(scope, message)]
            await send(message)

        refusal = self._refuse(scope)
        if refusal is not None:
            for message in refusal:
                await send_with_headers(message)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            if not started:
                for message in _error(413, "The request body is too large.", "payload_too_large"):
                    await send_with_headers(message)

    def _refuse(self, scope: Scope) -> tuple[Message, Message] | None:
        if scope["method"] not in UNSAFE:
            return None
        origin = None
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return _error(413, "The request body is too large.", "payload_too_large")
            if name == b"origin":
                origin = value.decode("latin-1")
        if origin is not None and origin not in self.origins:
            return _error(403, "Cross-site requests are not allowed.", "cross_site_request")
        return None

    def _headers_for(self, scope: Scope, message: Message) -> list[tuple[bytes, bytes]]:
        names = {name.lower() for name, _ in message.get("headers", [])}
        extra = [header for header in self.headers if header[0] not in names]  # a route's own value wins
        path: str = scope["path"]
        if b"content-security-policy" not in names:
            csp = DOCS_CSP if path == "/docs" else CSP
            extra.append((b"content-security-policy", csp.encode()))
        if path.startswith("/auth") and b"cache-control" not in names:
            extra.append((b"cache-control", b"no-store"))
        return extra
