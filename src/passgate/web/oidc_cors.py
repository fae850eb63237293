"""Cross-origin access to the OpenID provider's token-side endpoints, for browser apps (single-page apps,
Swagger UI's Authorize button): CORS for the origins of registered clients' redirect URIs, without
credentials, on discovery, JWKS, token, userinfo, revocation and introspection.

These endpoints take no cookie (a client secret, a code verifier or a bearer token authenticates them),
so a cross-site request cannot ride on anyone's session: their `Origin` is answered here and removed
before the cross-site refusal of `web/guard.py`, which protects the cookie-authenticated routes. The
authorization endpoint's form post (OIDC Core §3.1.2.1) is let through the same way: its cookie is
`SameSite=Lax` (absent on a cross-site POST), and consent needs a token from Passgate's own page.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passgate.services.context import Context
from passgate.services.oidc import flows
from passgate.web.guard import answer_headers

CORS_PATHS = frozenset(
    {"/.well-known/openid-configuration", "/oidc/jwks", "/oidc/token", "/oidc/userinfo", "/oidc/revoke",
     "/oidc/introspect"}
)  # fmt: skip
NO_COOKIE_PATHS = frozenset(
    {"/oidc/token", "/oidc/userinfo", "/oidc/revoke", "/oidc/introspect", "/oidc/authorize"}
)
PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST"),
    # Swagger UI's token request carries `X-Requested-With: XMLHttpRequest`: without it in the list the
    # browser refuses the preflight and the Authorize button fails with "Failed to fetch".
    (b"access-control-allow-headers", b"authorization, content-type, x-requested-with"),
    (b"access-control-max-age", b"600"),
]


class OidcCors:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or (path not in CORS_PATHS and path not in NO_COOKIE_PATHS):
            await self.app(scope, receive, send)
            return
        origin = next(
            (value.decode("latin-1") for name, value in scope["headers"] if name == b"origin"), None
        )
        allowed = origin is not None and path in CORS_PATHS and await self._allowed(scope, origin)
        if scope["method"] == "OPTIONS" and path in CORS_PATHS:
            ctx: Context = scope["app"].state.ctx
            headers = [(b"vary", b"origin"), (b"content-length", b"0"), *answer_headers(ctx.settings)]
            if allowed and origin is not None:
                headers += [(b"access-control-allow-origin", origin.encode()), *PREFLIGHT_HEADERS]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if origin is not None:
            scope = {**scope, "headers": [(n, v) for n, v in scope["headers"] if n != b"origin"]}

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and path in CORS_PATHS:
                extra = [(b"vary", b"origin")]
                if allowed and origin is not None:
                    extra.append((b"access-control-allow-origin", origin.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _allowed(self, scope: Scope, origin: str) -> bool:
        ctx: Context = scope["app"].state.ctx
        return await flows.allows_origin(ctx, origin)
