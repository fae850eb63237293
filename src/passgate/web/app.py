"""The ASGI application: `create_app(settings)` wires the routers, the guard and the error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from passgate.config import Settings
from passgate.errors import PassgateError, PayloadTooLarge, ServiceUnavailable
from passgate.services import maintenance, revocation, tenant_settings
from passgate.services.context import Context
from passgate.web.cookies import SessionCookie
from passgate.web.errors import describe_validation, error_response, unexpected_response
from passgate.web.guard import BodyTooLarge, Guard
from passgate.web.lanes import Table
from passgate.web.oidc_cors import OidcCors
from passgate.web.proxies import TrustedProxies
from passgate.web.ratelimit import RateLimit
from passgate.web.routes import account, auth, device, forward_auth, pages, passkey_api, ws
from passgate.web.routes import oidc as oidc_routes
from passgate.web.routes.docs import mount_docs

log = logging.getLogger("passgate")
SWEEP_INTERVAL = 60.0
DESCRIPTION = """Passgate: sign in with passkeys and nothing else.

Errors are `{"error": "<message for people>", "code": "<stable code>"}` with a 4xx status.
Ceremony options are WebAuthn JSON wrapped as `{"publicKey": {...}}` (give `options.publicKey` to
`PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`); finish bodies are
`credential.toJSON()`. Binary values are base64url without padding. Signed-in calls use the session
cookie; state-changing calls from browsers must come from an allowed origin."""


class PassgateApp(FastAPI):
    """FastAPI whose hot endpoints answer before the middleware stack (docs/performance.md): forward-auth,
    in front of every request of every protected app, and the lanes every sign-in goes through
    (web/lanes.py: the first-party API's and the passkey API's ceremonies), each inside the guard."""

    fast_lane: forward_auth.ForwardAuth | None = None
    _lanes = Table({})  # set per app in create_app

    @property
    def lanes(self) -> Mapping[tuple[str, str], ASGIApp]:
        """The lanes by method and path as FastAPI writes it (`/passkeys/{tenant_id}/login/finalize`)."""
        return self._lanes.lanes

    @lanes.setter
    def lanes(self, lanes: Mapping[tuple[str, str], ASGIApp]) -> None:
        self._lanes = Table(lanes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.fast_lane is not None and scope["path"] == forward_auth.PATH:
                await self.fast_lane(scope, receive, send)
                return
            lane = self._lanes.find(scope)
            if lane is not None:
                scope["app"] = self  # what Starlette sets for what follows (`request.app.state`)
                await lane(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        """The guard outside Starlette's whole stack: its last-resort 500 gets the security headers too.
        Outside it, the OpenID provider's CORS (its token-side endpoints take no cookie)."""
        return OidcCors(Guard(super().build_middleware_stack(), self.state.ctx.settings))


def create_app(settings: Settings, ctx: Context | None = None) -> FastAPI:
    """Build the app. `ctx` lets tests share a context; by default one is built from `settings`."""
    context = ctx or Context.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(context.db.check)
        await context.db.check_serving()
        await anyio.to_thread.run_sync(context.db.migrate)
        await anyio.to_thread.run_sync(tenant_settings.apply_declared, context)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_sweep_forever, context)
            tasks.start_soon(revocation.follow, context, app.state.forward_auth.gate.memory)
            yield
            tasks.cancel_scope.cancel()
        await context.db.release()

    app = PassgateApp(
        title="Passgate",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        docs_url=None,
    )
    app.state.ctx = context
    app.state.rate_limit = RateLimit(settings)
    app.state.proxies = TrustedProxies(settings.trusted_proxies)
    app.state.session_cookie = SessionCookie(settings.session_cookie_name)
    app.state.forward_auth = app.fast_lane = forward_auth.ForwardAuth(
        context, app.state.proxies, app.state.session_cookie
    )
    served = {**auth.lane.served, **passkey_api.lane.served}
    lanes: dict[tuple[str, str], ASGIApp] = {
        key: Guard(lane, settings, writes_headers=True) for key, lane in served.items()
    }
    me = ("GET", "/auth/me")
    app.state.remembered_me = lanes[me] = auth.RememberedMe(lanes[me], context, app.state.session_cookie)
    app.lanes = lanes
    _add_error_handlers(app)
    for module in (auth, account, ws):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.include_router(oidc_routes.router)
    app.include_router(passkey_api.router)
    app.include_router(forward_auth.router)  # before device.router, whose `/auth/{passphrase}` is last
    mount_docs(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(device.router)  # last: its `/auth/{passphrase}` must not shadow other routes
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PassgateError)
    async def passgate_error(request: Request, exc: PassgateError) -> Response:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(describe_validation(exc.errors()), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and pages.wants_page(request):  # a mistyped address in a browser
            return pages.not_found(request)
        if isinstance(exc.__cause__, BodyTooLarge):  # a chunked body over the limit, seen while parsing
            too_large = PayloadTooLarge()
            return JSONResponse(too_large.to_json(), status_code=too_large.status)
        codes = {404: "not_found", 405: "method_not_allowed"}
        return JSONResponse(
            {"error": str(exc.detail), "code": codes.get(exc.status_code, "http_error")},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(exc)


async def _sweep_forever(ctx: Context) -> None:
    while True:
        await anyio.sleep(SWEEP_INTERVAL)
        try:
            await maintenance.sweep_expired(ctx)
        except ServiceUnavailable as exc:
            log.warning("sweeping expired rows skipped: %s", exc.code)  # the database is busy or down
        except Exception:
            log.exception("sweeping expired rows failed")
