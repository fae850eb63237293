"""One pure-ASGI middleware for every request: body size limit, cross-site request refusal, and the
security headers. Pure ASGI because it runs on the hot paths. It wraps the whole middleware stack
(`web/app.py`), so its own refusals and Starlette's last-resort 500 carry the headers too; the answers
`passgate serve` writes before the app (`web/server.py`) take theirs from `answer_headers`. Its refusals
speak the error shape of the API they refuse (`error_answer`)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passgate.config import Settings
from passgate.errors import Forbidden, PassgateError, PayloadTooLarge

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PASSKEY_API = "/passkeys/"  # the passkey API for other backends (web/routes/passkey_api.py)
ANSWER_HEADERS = "passgate.answer_headers"  # scope key: the headers a lane adds to its answers (`Guard`)
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


def error_answer(path: str, error: PassgateError) -> tuple[Message, Message]:
    """The guard's own answer with `error`, in the error shape of the API at `path`, decided here
    only: the passkey API's (Hanko's `{"title","details","status"}`, its JSON answer with a trailing
    newline) under /passkeys/, `{"error","code"}` everywhere else."""
    if path.startswith(PASSKEY_API):
        body = json.dumps(error.to_problem(), separators=(",", ":")).encode() + b"\n"
        media = b"application/json; charset=UTF-8"
    else:
        body, media = json.dumps(error.to_json()).encode(), b"application/json"
    start: Message = {
        "type": "http.response.start",
        "status": error.status,
        "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


def _too_large() -> PassgateError:
    return PayloadTooLarge()


def _cross_site() -> PassgateError:
    return Forbidden("Cross-site requests are not allowed.", code="cross_site_request")


class BodyTooLarge(Exception):
    pass


class Guard:
    """`writes_headers`: `app` is a lane (web/lanes.py), which sets none of the guard's headers and adds
    them itself, from `scope[ANSWER_HEADERS]`, to every answer it writes: its `send` is not wrapped
    (two fewer coroutine calls and no look at its headers, per request on the hottest paths). A lane
    reads its body before it answers, so a body over the limit is still answered here."""

    def __init__(self, app: ASGIApp, settings: Settings, *, writes_headers: bool = False):
        self.app = app
        self.limit = settings.max_body_bytes
        self.origins = frozenset(settings.origins)
        self.writes_headers = writes_headers
        self.headers = security_headers(settings)
        csp = (b"content-security-policy", CSP.encode())
        # What a response that sets none of these headers itself gets, by path (built once).
        self._plain = [*self.headers, csp]
        self._auth = [*self.headers, csp, (b"cache-control", b"no-store")]
        self._names = frozenset(name for name, _ in self._auth)

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
            if self.writes_headers:
                scope[ANSWER_HEADERS] = self._auth if scope["path"].startswith("/auth") else self._plain
                await self.app(scope, limited_receive, send)
            else:
                await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            if not started:
                for message in error_answer(scope["path"], _too_large()):
                    await send_with_headers(message)

    def _refuse(self, scope: Scope) -> tuple[Message, Message] | None:
        if scope["method"] not in UNSAFE:
            return None
        origin = None
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return error_answer(scope["path"], _too_large())
            if name == b"origin":
                origin = value.decode("latin-1")
        if origin is not None and origin not in self.origins:
            return error_answer(scope["path"], _cross_site())
        return None

    def _headers_for(self, scope: Scope, message: Message) -> list[tuple[bytes, bytes]]:
        path: str = scope["path"]
        own = message.get("headers", [])
        if path != "/docs" and not any(name.lower() in self._names for name, _ in own):
            return self._auth if path.startswith("/auth") else self._plain  # the common case
        names = {name.lower() for name, _ in own}
        extra = [header for header in self.headers if header[0] not in names]  # a route's own value wins
        if b"content-security-policy" not in names:
            csp = DOCS_CSP if path == "/docs" else CSP
            extra.append((b"content-security-policy", csp.encode()))
        if path.startswith("/auth") and b"cache-control" not in names:
            extra.append((b"cache-control", b"no-store"))
        return extra
