"""The ASGI application: `create_app(settings)` wires the routers, the guard and the error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from passgate.config import Settings
from passgate.errors import PassgateError, PayloadTooLarge
from passgate.services import maintenance, revocation
from passgate.services.context import Context
from passgate.web.guard import BodyTooLarge, Guard
from passgate.web.proxies import TrustedProxies
from passgate.web.ratelimit import RateLimit
from passgate.web.routes import account, auth, device, forward_auth, pages, passkey_api, ws
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
    """FastAPI whose hottest endpoint, forward-auth, answers before the middleware stack: it sits in front
    of every request of every protected app (docs/performance.md, "Forward-auth")."""

    fast_lane: forward_auth.ForwardAuth | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_lane is not None and scope["type"] == "http" and scope["path"] == forward_auth.PATH:
            await self.fast_lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, ctx: Context | None = None) -> FastAPI:
    """Build the app. `ctx` lets tests share a context; by default one is built from `settings`."""
    context = ctx or Context.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(context.db.check)
        await anyio.to_thread.run_sync(context.db.migrate)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_sweep_forever, context)
            tasks.start_soon(revocation.follow, context, app.state.forward_auth.gate.memory)
            yield
            tasks.cancel_scope.cancel()

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
    app.state.forward_auth = app.fast_lane = forward_auth.ForwardAuth(context, app.state.proxies)
    app.add_middleware(Guard, settings=settings)
    _add_error_handlers(app)
    for module in (auth, account, ws):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.include_router(passkey_api.router)
    app.include_router(forward_auth.router)  # before device.router, whose `/auth/{passphrase}` is last
    mount_docs(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(device.router)  # last: its `/auth/{passphrase}` must not shadow other routes
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PassgateError)
    async def passgate_error(_request: Request, exc: PassgateError) -> JSONResponse:
        if exc.detail:
            log.info("%s: %s", exc.code, exc.detail.encode("unicode_escape").decode("ascii")[:300])
        return JSONResponse(exc.to_json(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_describe_validation(exc), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
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
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(
            {"error": "Something went wrong on our side.", "code": "internal_error"}, status_code=500
        )


def _describe_validation(exc: RequestValidationError) -> dict[str, str]:
    errors = exc.errors()
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


async def _sweep_forever(ctx: Context) -> None:
    while True:
        await anyio.sleep(SWEEP_INTERVAL)
        try:
            await maintenance.sweep_expired(ctx)
        except Exception:
            log.exception("sweeping expired rows failed")
