"""Lanes: the endpoints every sign-in goes through (sign-up and sign-in begin/finish, `GET /auth/me`),
served as bare ASGI apps in front of FastAPI's routing, as forward-auth is (docs/performance.md).

A lane is declared once, beside the other routes of its router, with `Lanes.post` / `Lanes.get`: its
handler and its request and answer types. The same declaration gives

- the lane: the body read and validated in one step (pydantic's `model_validate_json`, the 400s worded
  as FastAPI's are, web/errors.py), the caller, session and rate limit from the very functions FastAPI's
  dependencies use (web/deps.py, web/ratelimit.py), the answer written as JSON bytes, errors answered by
  the same code as the app's exception handlers;
- a FastAPI route (`LaneRoute`) with the same path, types, summary and step-up row that answers with
  the lane itself: the OpenAPI document, `405`s and every walk over the app's routes see it like any
  other route.

`PassgateApp` (web/app.py) hands a lane its requests before the middleware stack, wrapped in the
guard (body limit, cross-site refusal, security headers: web/guard.py). What this skips per request is
FastAPI's and Starlette's machinery (routing over every route, dependency solving, response
validation, three middlewares): about 80 µs of CPU, more than all the rest of a `GET /auth/me`.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from passgate.errors import BadRequest, PassgateError
from passgate.services.ceremonies import Client
from passgate.services.context import Context
from passgate.services.sessions import Current
from passgate.web import deps, ratelimit
from passgate.web.errors import describe_validation, error_response, unexpected_response
from passgate.web.guard import BodyTooLarge


@dataclass(frozen=True, slots=True)
class Answer:
    """A lane's `200`: a JSON body, and the `Set-Cookie` value when it signs someone in."""

    payload: dict[str, Any]
    cookie: str | None = None


class Call:
    """One request on a lane: what its handler may ask of it, from the functions FastAPI's dependencies
    use (so a lane and a route can never read the caller or the session differently)."""

    __slots__ = ("connection", "ctx")

    def __init__(self, scope: Scope):
        self.connection = HTTPConnection(scope)
        self.ctx: Context = deps.context_of(self.connection)

    @property
    def client(self) -> Client:
        return deps.client_of(self.connection)

    async def maybe_signed_in(self) -> Current | None:
        return await deps.optional_session(self.connection)

    async def signed_in(self) -> Current:
        return await deps.require_session(self.connection)


Handler = Callable[[Call, Any], Awaitable[Answer]]  # (the call, the parsed body or None)


class Lane:
    """The ASGI app of one endpoint."""

    def __init__(self, handler: Handler, body: type[BaseModel] | None, optional: bool, limit: str | None):
        self.handler = handler
        self.body = body
        self.optional = optional
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(scope)
        try:
            if self.limit is not None:
                await ratelimit.count(call.connection, self.limit)
            body = self._parse(self.body, scope, await _read(receive)) if self.body is not None else None
            answer = await self.handler(call, body)
        except PassgateError as exc:
            await error_response(call.connection, exc)(scope, receive, send)
            return
        except BodyTooLarge:
            raise  # the guard answers it
        except Exception as exc:
            await unexpected_response(exc)(scope, receive, send)
            return
        payload = json.dumps(answer.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if answer.cookie is not None:
            headers.append((b"set-cookie", answer.cookie.encode("latin-1")))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _parse(self, model: type[BaseModel], scope: Scope, body: bytes) -> BaseModel | None:
        """The body as the lane's model (None for an optional one left out), or the 400 FastAPI gives."""
        if not body or (self.optional and body.strip() == b"null"):
            if self.optional:
                return None
            raise InvalidBody(describe_validation([{"type": "missing", "loc": ("body",)}]))
        if not _json_content(scope):
            raise InvalidBody(
                {"error": "The body must be JSON (application/json).", "code": "invalid_request"}
            )
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidBody(describe_validation(exc.errors())) from None


class InvalidBody(BadRequest):
    def __init__(self, described: dict[str, str]):
        super().__init__(described["error"], code=described["code"])


async def _read(receive: Receive) -> bytes:
    """The whole body (the guard's `receive` stops it at the size limit)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise BadRequest("The request ended early.", code="request_incomplete")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _json_content(scope: Scope) -> bool:
    """What FastAPI reads as JSON: no `Content-Type`, or `application/json` / `application/*+json`."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (
                kind.startswith(b"application/") and kind.endswith(b"+json")
            )
    return True


class Lanes:
    """The lanes declared on one router; `PassgateApp` serves them (`served`)."""

    def __init__(self, router: APIRouter):
        self.router = router
        self.served: dict[tuple[str, str], ASGIApp] = {}

    def post(
        self,
        path: str,
        *,
        body: type[BaseModel] | None,
        answer: type[BaseModel] | None,
        summary: str,
        optional: bool = False,
        limit: str | None = None,
    ) -> Callable[[Handler], Handler]:
        return self._declare("POST", path, body, answer, summary, optional, limit)

    def get(self, path: str, *, answer: type[BaseModel] | None, summary: str) -> Callable[[Handler], Handler]:
        return self._declare("GET", path, None, answer, summary, False, None)

    def _declare(
        self,
        method: str,
        path: str,
        body: type[BaseModel] | None,
        answer: type[BaseModel] | None,
        summary: str,
        optional: bool,
        limit: str | None,
    ) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            lane = Lane(handler, body, optional, limit)
            self.router.add_api_route(
                path,
                _described(handler, body, optional, answer),
                methods=[method],
                summary=summary,
                response_model=answer,
                route_class_override=LaneRoute,
            )
            route = self.router.routes[-1]
            assert isinstance(route, LaneRoute)
            route.lane = lane
            self.served[(method, self.router.prefix + path)] = lane
            return handler

        return declare


class LaneRoute(APIRoute):
    """A lane's FastAPI route: described like any route, and when FastAPI's routing reaches it (the app
    hands lanes their requests first, so only a request it did not take, e.g. another method), it
    answers with the lane itself or with FastAPI's `405`."""

    lane: Lane

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in (self.methods or ()):
            await self.lane(scope, receive, send)
            return
        await super().handle(scope, receive, send)  # 405 with `Allow`


def _described(
    handler: Handler, body: type[BaseModel] | None, optional: bool, answer: type[BaseModel] | None
) -> Callable[..., Any]:
    """A stand-in endpoint that FastAPI reads to describe the lane: the handler's name, docstring and
    step-up row, and a signature with the body's type. FastAPI never calls it (`LaneRoute.handle`)."""

    async def endpoint(**_: Any) -> Any:
        raise AssertionError("served by its lane")  # pragma: no cover

    functools.update_wrapper(endpoint, handler)
    del endpoint.__wrapped__  # type: ignore[attr-defined]  # FastAPI must read the signature below
    parameters = []
    if body is not None:
        annotation: Any = body | None if optional else body
        default = None if optional else inspect.Parameter.empty
        parameters.append(
            inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        )
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=answer)  # type: ignore[attr-defined]
    return endpoint
