"""`GET /auth/forward-auth`: the gate for Caddy `forward_auth`, nginx `auth_request`, Traefik `forwardAuth`.

The endpoint is a bare ASGI callable (`ForwardAuth`): the app hands it this path before the middleware
stack (`web/app.py`), because it sits in front of every request of every protected app. A 204 is two
ASGI messages with headers built when the session was read; no body is read, nothing is rendered.
Denials carry a small self-contained page (HTML for browsers, JSON otherwise) that sends the person to
Passgate's sign-in page, and a `Location` hint for proxies that redirect themselves (nginx).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from html import escape
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from passgate.config import Settings
from passgate.errors import DuplicateCookie, PassgateError
from passgate.memo import Memo
from passgate.services.context import Context
from passgate.services.forward_auth import DUPLICATE_COOKIE, Decision, Gate
from passgate.services.return_url import requested, safe_return_url
from passgate.web.cookies import session_value
from passgate.web.deps import Ctx, MaybeSignedIn
from passgate.web.guard import answer_headers
from passgate.web.proxies import COOKIE, Forwarded, TrustedProxies, collect, read_forwarded

log = logging.getLogger("passgate.forward_auth")
PATH = "/auth/forward-auth"
Answer = tuple[int, Sequence[tuple[bytes, bytes]], bytes]
MAX_COOKIES = 4096
LONGEST_COOKIE = 1024  # bytes: a Cookie header with a few cookies besides the session's (~340 bytes)
_UNSEEN = "\0unseen"  # memo markers: no real cookie value contains NUL
_DUPLICATE = "\0duplicate"
PAGE_CSP = b"default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
# The gate's denials carry the same security headers as every other answer (`web/guard.py`, the one
# place they are defined), with a stricter policy for their tiny page: nothing loads, nothing is sent on.
DENIAL_OVERRIDES = {
    b"content-security-policy": PAGE_CSP,
    b"referrer-policy": b"no-referrer",  # the sign-in link carries the return URL
    b"cache-control": b"no-store",
}


def denial_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    base = [(name, value) for name, value in answer_headers(settings) if name not in DENIAL_OVERRIDES]
    return [*base, *DENIAL_OVERRIDES.items()]


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}<title>{title} · {rp}</title></head>
<body><main><h1>{title}</h1><p>{text}</p><p><a href="{link}">{action}</a></p></main></body></html>
"""


class ForwardAuth:
    """The ASGI endpoint; one per app, holding the gate (rules and session memory)."""

    def __init__(self, ctx: Context, proxies: TrustedProxies):
        self.gate = Gate(ctx)
        self.proxies = proxies
        self.cookie = ctx.settings.session_cookie_name
        self._tokens: Memo[bytes, str | None] = Memo(MAX_COOKIES, longest=LONGEST_COOKIE)  # header → token
        self.security = denial_headers(ctx.settings)

    def _json(self, status: int, payload: dict[str, str], extra: list[tuple[bytes, bytes]]) -> Answer:
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), *_length(body), *self.security, *extra]
        return status, headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, headers, body = await self.answer(scope)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    async def answer(self, scope: Scope) -> Answer:
        """Status, headers and body for one request; never a 2xx by mistake (errors deny)."""
        try:
            values = collect(scope["headers"])
            forwarded = read_forwarded(self.proxies, scope, values)
            cookie = values.get(COOKIE)
            token = self._token(cookie) if cookie is not None else None
            decision = await self.gate.decide(token, scope["query_string"], forwarded.host, forwarded.uri)
        except DuplicateCookie:
            log.warning("forward-auth refused: the session cookie was sent twice (%s)", forwarded.host)
            decision = DUPLICATE_COOKIE
        except PassgateError as exc:
            log.warning("forward-auth refused: %s (%s)", exc.code, exc.detail or exc.message)
            return self._json(exc.status, {"error": exc.message, "code": exc.code}, [])
        except Exception:
            log.exception("forward-auth failed; denying")
            return self._json(
                500, {"error": "Something went wrong on our side.", "code": "internal_error"}, []
            )
        if decision.allowed:
            return 204, decision.headers, b""
        return self._denial(scope, decision, forwarded)

    def _token(self, cookie: bytes) -> str | None:
        """The session token in a Cookie header (`web/cookies.py`: the one parser), remembered per header
        value; DuplicateCookie, every time, for a header that carries it twice."""
        token = self._tokens.get(cookie, _UNSEEN)
        if token is _UNSEEN:
            try:
                token = session_value(cookie.decode("latin-1"), self.cookie)
            except DuplicateCookie:
                token = _DUPLICATE
            self._tokens.remember(cookie, token, size=len(cookie))
        if token is _DUPLICATE:
            raise DuplicateCookie()
        return token

    def _denial(self, scope: Scope, decision: Decision, forwarded: Forwarded) -> Answer:
        if decision.status == 403:
            log.info(
                "forward-auth: %s not allowed by %s for %s", decision.user_name, decision.rule, forwarded.host
            )
        signin = self.gate.signin_url(self.gate.return_url(forwarded.url), recheck=decision.recheck)
        extra = [(b"location", signin.encode())]
        if decision.status == 401:
            extra.append((b"www-authenticate", b"PrivateToken"))
        if not _wants_html(scope):
            return self._json(
                decision.status,
                {"error": decision.message, "code": decision.code, "signin_url": signin},
                extra,
            )
        body = _page(self.gate.ctx.settings.rp_name, decision, signin, forwarded.host).encode()
        return (
            decision.status,
            [(b"content-type", b"text/html; charset=utf-8"), *_length(body), *self.security, *extra],
            body,
        )


def _wants_html(scope: Scope) -> bool:
    return any(name == b"accept" and b"text/html" in value for name, value in scope["headers"])


def _length(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(len(body)).encode())]


def _page(rp_name: str, decision: Decision, signin: str, host: str | None) -> str:
    where = escape(host) if host else "this page"
    if decision.status == 403:
        title, action, refresh = "Not allowed", "Sign in with another account", ""
        text = f"You are signed in as {escape(decision.user_name)}, but your account may not open {where}."
    else:
        title, action = (
            ("Confirm it's you", "Check with your passkey")
            if decision.recheck
            else ("Sign in", "Sign in with a passkey")
        )
        text = f"{where} needs a recent passkey check." if decision.recheck else f"Sign in to open {where}."
        refresh = f'<meta http-equiv="refresh" content="0;url={escape(signin)}">\n'
    return PAGE.format(
        refresh=refresh, title=title, rp=escape(rp_name), text=text, link=escape(signin), action=action
    )


router = APIRouter(prefix="/auth", tags=["forward-auth"])


@router.get(
    "/forward-auth",
    status_code=204,
    response_class=Response,
    summary="Forward-auth gate (Caddy, nginx, Traefik)",
    responses={
        204: {
            "description": "Allowed: `x-auth-user-id`, `Remote-User`, `Remote-Name`, `Remote-Email`, "
            "`Remote-Groups`"
        },
        401: {
            "description": "Not signed in, or a fresher passkey check is needed: sign-in page (HTML) or JSON"
        },
        403: {"description": "Signed in but not allowed by the rule"},
        400: {
            "description": "Unknown query option or rule, or unparsable X-Forwarded-* from a trusted proxy"
        },
    },
)
async def forward_auth(request: Request) -> Response:
    """Reads the session cookie and, from trusted proxies (`PASSGATE_TRUSTED_PROXIES`),
    `X-Forwarded-Proto/Host/Uri/Method/For`. Query options: `user=`, `group=` (comma-separated or
    repeated), `max_age=` seconds since the last passkey check, `uv=1`, `rule=NAME` (from
    `PASSGATE_FORWARD_AUTH_RULES`). See `docs/proxies.md`."""
    endpoint: ForwardAuth = request.app.state.forward_auth
    status, headers, body = await endpoint.answer(request.scope)
    response = Response(body, status_code=status)
    response.raw_headers = list(headers)
    return response


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
async def auth_app(request: Request, ctx: Ctx, current: MaybeSignedIn) -> RedirectResponse:
    """`/auth` and `/auth/`, the authentication app other gates' configs send people to (nginx
    `error_page 401 = …/auth/?rd=…`): the sign-in page when signed out, carrying a return URL from
    `return_to`, `rd` or `next` once it passes the return-URL check; the account page when signed in."""
    if current is not None:
        return RedirectResponse("/account", status_code=303)
    back = safe_return_url(ctx.settings, requested(request.query_params))
    return RedirectResponse(
        "/signin" + (f"?{urlencode({'return_to': back})}" if back else ""), status_code=303
    )
