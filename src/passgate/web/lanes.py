"""Lanes: the endpoints every sign-in goes through (sign-up and sign-in begin/finish, `GET /auth/me`, and
the passkey API's ceremonies), served as bare ASGI apps in front of FastAPI's routing, as forward-auth is
(docs/performance.md).

A lane is declared once, beside the other routes of its router, with `Lanes.post` / `Lanes.get`: its
handler and its request and answer types. The same declaration gives

- the lane: the body read and validated in one step (pydantic's `model_validate_json`, the 400s worded
  as FastAPI's are, web/errors.py), the caller, session and rate limit from the very functions FastAPI's
  dependencies use (web/deps.py, web/ratelimit.py), the answer written as JSON bytes, errors answered by
  the same code as the app's exception handlers;
- a FastAPI route (`LaneRoute`) with the same path, types, summary and step-up row that answers with
  the lane itself: the OpenAPI document, `405`s and every walk over the app's routes see it like any
  other route.

A `Dialect` says how a family of lanes answers: the first-party API's `{"error","code"}` by default,
the passkey API's Hanko shape (web/routes/passkey_api.py), whose handlers read their own bodies. A lane's
path may hold one parameter segment (`/passkeys/{tenant_id}/login/finalize`): `Table` finds it by
splitting the request's path once, and hands the value on as Starlette's routing does (`path_params`).

`PassgateApp` (web/app.py) hands a lane its requests before the middleware stack, wrapped in the
guard (body limit, cross-site refusal, security headers: web/guard.py). What this skips per request is
FastAPI's and Starlette's machinery (routing over every route, dependency solving, response
validation, three middlewares): about 80 µs of CPU, more than all the rest of a `GET /auth/me`.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from passgate.errors import BadRequest, PassgateError
from passgate.services.ceremonies import Client
from passgate.services.context import Context
from passgate.services.sessions import Current
from passgate.web import deps, ratelimit
from passgate.web.errors import describe_validation, error_response, unexpected_response
from passgate.web.guard import ANSWER_HEADERS, BodyTooLarge

Headers = list[tuple[bytes, bytes]]


class Answer(NamedTuple):
    """A lane's `200`: a JSON body (or its encoding, for an answer remembered as bytes), and the
    `Set-Cookie` value when it signs someone in. (A tuple: made on every request, it costs least.)"""

    payload: dict[str, Any] | bytes
    cookie: str | None = None


class Call:
    """One request on a lane: what its handler may ask of it, from the functions FastAPI's dependencies
    use (so a lane and a route can never read the caller or the session differently). `request` is
    Starlette's, made when a handler asks for it (to read its body itself, headers or the path's
    parameters)."""

    __slots__ = ("_request", "ctx", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive):
        self.scope = scope
        self.receive = receive
        self.ctx: Context = deps.context_in(scope)
        self._request: Request | None = None

    @property
    def request(self) -> Request:
        if self._request is None:
            self._request = Request(self.scope, self.receive)
        return self._request

    @property
    def client(self) -> Client:
        return deps.client_of(self.request)

    async def maybe_signed_in(self) -> Current | None:
        return await deps.optional_session_in(self.ctx, self.scope)

    async def signed_in(self) -> Current:
        return await deps.require_session_in(self.ctx, self.scope)


Handler = Callable[[Call, Any], Awaitable[Answer]]  # (the call, the parsed body or None)


class Dialect:
    """How a family of lanes answers: as the first-party API does (`{"error","code"}`, web/errors.py).
    Another API's lanes bring a subclass speaking its own shape (web/routes/passkey_api.py)."""

    def answer(self, call: Call, answer: Answer) -> tuple[Headers, bytes]:
        """The `200`'s headers and body."""
        payload = answer.payload if isinstance(answer.payload, bytes) else encode(answer.payload)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if answer.cookie is not None:
            headers.append((b"set-cookie", answer.cookie.encode("latin-1")))
        return headers, payload

    def error(self, call: Call, exc: Exception) -> Response | None:
        """The answer to what the handler raised; None to let it rise (a body over the limit: the guard
        answers it)."""
        if isinstance(exc, PassgateError):
            return error_response(call.request, exc)
        if isinstance(exc, BodyTooLarge):
            return None
        return unexpected_response(exc)


FIRST_PARTY = Dialect()


def encode(payload: dict[str, Any]) -> bytes:
    """A first-party answer's JSON, as a lane writes it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class Lane:
    """The ASGI app of one endpoint."""

    def __init__(
        self,
        handler: Handler,
        body: type[BaseModel] | None,
        optional: bool,
        limit: str | None,
        dialect: Dialect = FIRST_PARTY,
    ):
        self.handler = handler
        self.body = body
        self.optional = optional
        self.limit = limit
        self.dialect = dialect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(scope, receive)
        try:
            if self.limit is not None:
                await ratelimit.count(call.request, self.limit)
            body = self._parse(self.body, scope, await _read(receive)) if self.body is not None else None
            answer = await self.handler(call, body)
        except Exception as exc:
            response = self.dialect.error(call, exc)
            if response is None:
                raise
            response.raw_headers.extend(scope.get(ANSWER_HEADERS, ()))
            await response(scope, receive, send)
            return
        headers, payload = self.dialect.answer(call, answer)
        headers.extend(scope.get(ANSWER_HEADERS, ()))
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
    """The lanes declared on one router, all speaking one dialect; `PassgateApp` serves them (`served`,
    by method and path as FastAPI writes it, parameters in braces)."""

    def __init__(self, router: APIRouter, dialect: Dialect = FIRST_PARTY):
        self.router = router
        self.dialect = dialect
        self.served: dict[tuple[str, str], ASGIApp] = {}

    def post(
        self,
        path: str,
        *,
        body: type[BaseModel] | None = None,
        answer: type[BaseModel] | None = None,
        summary: str,
        optional: bool = False,
        limit: str | None = None,
        documented: Documented | None = None,
    ) -> Callable[[Handler], Handler]:
        """`documented`: what FastAPI cannot read from `body` and `answer`, for a handler that reads its
        body or headers itself."""
        return self._declare("POST", path, body, answer, summary, optional, limit, documented or Documented())

    def get(self, path: str, *, answer: type[BaseModel] | None, summary: str) -> Callable[[Handler], Handler]:
        return self._declare("GET", path, None, answer, summary, False, None, Documented())

    def _declare(
        self,
        method: str,
        path: str,
        body: type[BaseModel] | None,
        answer: type[BaseModel] | None,
        summary: str,
        optional: bool,
        limit: str | None,
        documented: Documented,
    ) -> Callable[[Handler], Handler]:
        full = self.router.prefix + path

        def declare(handler: Handler) -> Handler:
            lane = Lane(handler, body, optional, limit, self.dialect)
            self.router.add_api_route(
                path,
                _described(handler, full, body, optional, answer, documented.parameters),
                methods=[method],
                summary=summary,
                response_model=answer,
                responses=documented.responses,
                openapi_extra=documented.openapi_extra,
                route_class_override=LaneRoute,
            )
            route = self.router.routes[-1]
            assert isinstance(route, LaneRoute)
            route.lane = lane
            self.served[(method, full)] = lane
            return handler

        return declare


@dataclass(frozen=True, slots=True)
class Documented:
    """A lane's OpenAPI description beyond its body and answer types: more parameters (headers the
    handler reads itself), FastAPI's `responses` and `openapi_extra` (a body the handler reads itself)."""

    parameters: Sequence[inspect.Parameter] = ()
    responses: dict[int | str, dict[str, Any]] | None = None
    openapi_extra: dict[str, Any] | None = None


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


class Table:
    """Every lane by method and path, found per request without a walk over the routes: a plain path by
    one dict look-up; a path with a parameter segment right after its first one
    (`/passkeys/{tenant_id}/login/finalize`) by that first segment, then the rest after the value
    (`/login/finalize`), with the value handed on in `path_params` as Starlette's routing does."""

    def __init__(self, lanes: Mapping[tuple[str, str], ASGIApp]):
        self.lanes = lanes
        self._plain: dict[tuple[str, str], ASGIApp] = {}
        self._under: dict[str, tuple[str, dict[tuple[str, str], ASGIApp]]] = {}  # head: (name, lanes)
        for (method, path), lane in lanes.items():
            if "{" not in path:
                self._plain[(method, path)] = lane
                continue
            head, name, rest = _parameter_segment(path)
            self._under.setdefault(head, (name, {}))[1][(method, rest)] = lane
            if self._under[head][0] != name:
                raise ValueError(f"lanes under {head} name their parameter differently: {path}")

    def find(self, scope: Scope) -> ASGIApp | None:
        path: str = scope["path"]
        lane = self._plain.get((scope["method"], path))
        if lane is not None or not self._under:
            return lane
        end = path.find("/", 1) + 1  # after the first segment's slash
        under = self._under.get(path[:end]) if end else None
        if under is None:
            return None
        cut = path.find("/", end)
        if cut <= end:  # no value, or nothing after it
            return None
        name, lanes = under
        lane = lanes.get((scope["method"], path[cut:]))
        if lane is not None:
            scope["path_params"] = {name: path[end:cut]}
        return lane


def _parameter_segment(path: str) -> tuple[str, str, str]:
    """`/passkeys/{tenant_id}/login/finalize` as (`/passkeys/`, `tenant_id`, `/login/finalize`); the only
    shape `Table` serves (one parameter, a whole second segment, with no convertor)."""
    head, _, after = path.partition("{")
    name, _, rest = after.partition("}")
    if head.count("/") != 2 or not head.endswith("/") or not name.isidentifier() or not rest.startswith("/"):
        raise ValueError(f"a lane's path may hold one parameter, as its second segment: {path}")
    if "{" in rest:
        raise ValueError(f"a lane's path may hold one parameter only: {path}")
    return head, name, rest


def _described(
    handler: Handler,
    path: str,
    body: type[BaseModel] | None,
    optional: bool,
    answer: type[BaseModel] | None,
    more: Sequence[inspect.Parameter],
) -> Callable[..., Any]:
    """A stand-in endpoint that FastAPI reads to describe the lane: the handler's name, docstring and
    step-up row, and a signature with the path's parameters, `more` and the body's type. FastAPI never
    calls it (`LaneRoute.handle`)."""

    async def endpoint(**_: Any) -> Any:
        raise AssertionError("served by its lane")  # pragma: no cover

    functools.update_wrapper(endpoint, handler)
    del endpoint.__wrapped__  # type: ignore[attr-defined]  # FastAPI must read the signature below
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter(name, keyword, annotation=str) for name in compile_path(path)[2]]
    parameters.extend(more)
    if body is not None:
        annotation: Any = body | None if optional else body
        default = None if optional else inspect.Parameter.empty
        parameters.append(inspect.Parameter("body", keyword, annotation=annotation, default=default))
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=answer)  # type: ignore[attr-defined]
    return endpoint
