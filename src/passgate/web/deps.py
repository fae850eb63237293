"""Dependencies shared by the routes: the context, the caller, the signed-in session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection
from starlette.types import Scope

from passgate.errors import NotAuthenticated
from passgate.services import sessions
from passgate.services.ceremonies import Client
from passgate.services.context import Context
from passgate.services.sessions import Current
from passgate.web import cookies, proxies


def context_of(connection: HTTPConnection) -> Context:
    return context_in(connection.scope)


def context_in(scope: Scope) -> Context:
    """The app's context, from a request's scope (a lane reads it there without a `Request`)."""
    ctx: Context = scope["app"].state.ctx
    return ctx


def client_of(connection: HTTPConnection) -> Client:
    ctx = context_of(connection)
    origin = connection.headers.get("origin")
    return Client(
        user_agent=connection.headers.get("user-agent", ""),
        ip=proxies.client_ip(connection),
        origin=origin if origin in ctx.settings.origins else None,
    )


def session_token(connection: HTTPConnection) -> str | None:
    return session_token_in(connection.scope)


def session_token_in(scope: Scope) -> str | None:
    """The session cookie's value (web/cookies.py: the one parser, every `Cookie` header joined)."""
    cookie: cookies.SessionCookie = scope["app"].state.session_cookie
    return cookie.in_headers(scope["headers"])


async def optional_session(connection: HTTPConnection) -> Current | None:
    return await optional_session_in(context_of(connection), connection.scope)


async def require_session(connection: HTTPConnection) -> Current:
    return await require_session_in(context_of(connection), connection.scope)


async def optional_session_in(ctx: Context, scope: Scope) -> Current | None:
    token = session_token_in(scope)
    if not token:
        return None
    try:
        return await sessions.authenticate(ctx, token)
    except NotAuthenticated:
        return None


async def require_session_in(ctx: Context, scope: Scope) -> Current:
    return await sessions.authenticate(ctx, session_token_in(scope))


# Dependencies are `async def`: FastAPI runs plain `def` dependencies on the thread pool (a hop each).
async def get_context(connection: HTTPConnection) -> Context:
    return context_of(connection)


async def get_client(connection: HTTPConnection) -> Client:
    return client_of(connection)


Ctx = Annotated[Context, Depends(get_context)]
Caller = Annotated[Client, Depends(get_client)]
MaybeSignedIn = Annotated[Current | None, Depends(optional_session)]
SignedIn = Annotated[Current, Depends(require_session)]
