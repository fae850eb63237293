"""The lanes (web/lanes.py): the sign-in endpoints answered in front of FastAPI's routing are the same
endpoints FastAPI documents and would route to, the passkey API's ceremonies among them (with their
tenant in the path and Hanko's error shape); `passgate serve` writes an answer in one piece."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from apikit import Backend, backend_client, make_tenant, problem
from flows import ORIGIN, Passkeys, unique_name
from passgate.services.context import Context
from passgate.web.app import create_app
from passgate.web.lanes import Table
from passgate.web.routes.auth import RememberedMe
from passgate.web.routes.passkey_api import TAG
from passgate.web.server import CorkedTransport

LANES = {
    ("POST", "/auth/register/begin"),
    ("POST", "/auth/register/finish"),
    ("POST", "/auth/login/begin"),
    ("POST", "/auth/login/finish"),
    ("GET", "/auth/me"),
}
API = "/passkeys/{tenant_id}"
API_LANES = {
    ("POST", API + path)
    for ceremony in ("/registration", "/login", "/mfa/registration", "/mfa/login", "/transaction")
    for path in (ceremony + "/initialize", ceremony + "/finalize")
}


def _flat(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        yield from _flat(included.routes) if included is not None else [route]


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=ORIGIN, headers={"origin": ORIGIN}
    )


def _routes(app: Any) -> dict[tuple[str, str], Any]:
    return {
        (method, route.path): route
        for route in _flat(app.routes)
        if isinstance(route, APIRoute)
        for method in route.methods
    }


def test_every_lane_is_a_documented_route_that_answers_with_the_lane(ctx: Context) -> None:
    app = create_app(ctx.settings, ctx)
    assert set(app.lanes) == LANES | API_LANES  # type: ignore[attr-defined]
    routes = _routes(app)
    document = app.openapi()["paths"]
    for method, path in LANES:
        route = routes[(method, path)]
        served = app.lanes[(method, path)]  # type: ignore[attr-defined]
        if isinstance(served, RememberedMe):  # answers `GET /auth/me` again in front of the lane's guard
            served = served.lane
        assert route.lane is served.app  # the guard wraps it
        operation = document[path][method.lower()]
        assert "$ref" in str(operation["responses"]["200"]["content"]["application/json"]["schema"])
        assert ("requestBody" in operation) == (method == "POST"), path


def test_the_passkey_api_ceremonies_are_lanes_documented_as_before(ctx: Context) -> None:
    """Each is the lane of a route under the API's tag, with its tenant, its `apiKey` header where the
    contract takes one, its body's schema and Hanko's errors."""
    app = create_app(ctx.settings, ctx)
    routes = _routes(app)
    document = app.openapi()["paths"]
    for method, path in API_LANES:
        assert routes[(method, path)].lane is app.lanes[(method, path)].app  # type: ignore[attr-defined]
        operation = document[path]["post"]
        assert operation["tags"] == [TAG] and operation["summary"], path
        parameters = {(item["in"], item["name"]) for item in operation["parameters"]}
        keyless = path.endswith(("/registration/finalize", "/login/finalize")) and "/mfa/" not in path
        assert parameters == {("path", "tenant_id")} | (set() if keyless else {("header", "apiKey")}), path
        assert operation["requestBody"]["content"]["application/json"]["schema"], path
        assert "Problem" in str(operation["responses"]["401"]), path
    finalize = document[API + "/login/finalize"]["post"]["responses"]["200"]
    assert "TokenAnswer" in str(finalize)
    login = document[API + "/login/initialize"]["post"]["requestBody"]["content"]["application/json"]
    assert login["schema"]["title"] == "LoginInit"


def test_the_table_finds_a_lane_by_the_path_after_its_parameter() -> None:
    finalize, initialize, me = object(), object(), object()
    table = Table(
        {
            ("POST", API + "/login/finalize"): finalize,  # type: ignore[dict-item]
            ("POST", API + "/login/initialize"): initialize,  # type: ignore[dict-item]
            ("GET", "/auth/me"): me,  # type: ignore[dict-item]
        }
    )

    def find(method: str, path: str) -> tuple[object, object]:
        scope: dict[str, Any] = {"method": method, "path": path}
        return table.find(scope), scope.get("path_params")

    assert find("POST", "/passkeys/not-a-uuid/login/finalize") == (finalize, {"tenant_id": "not-a-uuid"})
    assert find("POST", "/passkeys/t/login/initialize") == (initialize, {"tenant_id": "t"})
    assert find("GET", "/auth/me") == (me, None)
    for method, path in [
        ("GET", "/passkeys/t/login/finalize"),  # another method: FastAPI's routing answers
        ("POST", "/passkeys//login/finalize"),  # no tenant
        ("POST", "/passkeys/t/login/finalize/"),
        ("POST", "/passkeys/t"),
        ("POST", "/passkeys/"),
        ("POST", "/auth/t/login/finalize"),
        ("POST", "/"),
        ("POST", "/passkeys/t/u/login/finalize"),
    ]:
        assert find(method, path) == (None, None), path
    for template in ("/a/b/{x}/c", "/{x}/c", "/a/{x}/{y}", "/a/{x:path}/c", "/a/pre{x}/c"):
        with pytest.raises(ValueError, match="parameter"):
            Table({("POST", template): me})  # type: ignore[dict-item]


async def test_the_passkey_api_ceremonies_answer_without_fastapis_routing(ctx: Context) -> None:
    """With every FastAPI route gone, a backend still registers a user and logs in: the ceremonies
    never reach the routing. The JWKS route (not a lane) is gone with the routing."""
    app = create_app(ctx.settings, ctx)
    tenant = make_tenant(ctx)
    async with backend_client(app) as http:
        backend = Backend(http, tenant)
        app.router.routes.clear()
        user = str(uuid.uuid4())
        registered = await backend.register(user)
        assert registered.status_code == 200 and registered.json()["token"].count(".") == 2
        signed_in = await backend.login(user)
        assert signed_in.status_code == 200 and signed_in.json()["token"].count(".") == 2
        assert signed_in.headers["content-type"] == "application/json; charset=UTF-8"
        assert signed_in.content.endswith(b"\n") and len(signed_in.headers["x-request-id"]) == 32
        assert (await http.get(backend.base + "/.well-known/jwks.json")).status_code == 404


SENT = {"x-request-id": "req-7", "content-type": "application/json"}
TRANSACTION = b'{"user_id": "u", "transaction_id": "t", "transaction_data": 1}'
REFUSALS = [  # (path under the tenant's base, or a whole path; body; more headers; status; Hanko's title)
    ("/passkeys/not-a-uuid/login/finalize", b"{}", {}, 400, "tenant_id must be a valid uuid4"),
    (f"/passkeys/{uuid.uuid4()}/login/initialize", b"", {}, 404, "tenant not found"),
    (f"/passkeys/{uuid.uuid4()}/transaction/finalize", b"{}", {}, 404, "tenant not found"),
    ("/transaction/initialize", TRANSACTION, {}, 401, "The api key is invalid"),
    ("/login/finalize", b"[", {}, 400, "unable to process request"),
    ("/login/finalize", b"{}", {}, 400, "unable to finish login"),
    ("/login/finalize", "streamed", {}, 413, "The request body is too large."),  # read by the lane
    ("/login/finalize", b"x" * 70_000, {}, 413, "The request body is too large."),  # the guard's
    (
        "/login/initialize",
        b"{}",
        {"origin": "https://evil.example"},
        403,
        "Cross-site requests are not allowed.",
    ),
]


async def _streamed() -> AsyncIterator[bytes]:
    for _ in range(70):
        yield b"A" * 1000


async def test_the_passkey_api_lanes_answer_as_the_routes_did(ctx: Context) -> None:
    """The same answers in front of the routing and behind it, errors in Hanko's shape: a tenant id that
    is no UUID, an unknown tenant, a missing key, a bad body, the guard's refusals, another method."""
    tenant = make_tenant(ctx)
    behind = create_app(ctx.settings, ctx)
    behind.lanes = {}  # type: ignore[attr-defined]
    answers = []
    for app in (create_app(ctx.settings, ctx), behind):
        async with backend_client(app) as http:
            base = Backend(http, tenant).base
            seen = []
            for path, content, headers, status, title in REFUSALS:
                url = path if path.startswith("/passkeys/") else base + path
                body = _streamed() if content == "streamed" else content
                response = await http.post(url, content=body, headers={**SENT, **headers})
                assert problem(response, status, title)["details"] is not None
                assert response.headers["content-type"] == "application/json; charset=UTF-8"
                assert response.content.endswith(b"\n")
                assert response.headers["content-security-policy"], path  # the guard's headers
                seen.append((status, response.content, response.headers.get("x-request-id")))
            assert [request_id for *_, request_id in seen[:7]] == ["req-7"] * 7  # the lane's answers
            other = await http.get(f"{base}/login/finalize", headers=SENT)  # routed: Hanko's 404
            problem(other, 404, "Not Found")
            seen.append((404, other.content, other.headers.get("x-request-id")))
            answers.append(seen)
    assert answers[0] == answers[1]


def test_the_openapi_document_covers_every_endpoint(ctx: Context) -> None:
    app = create_app(ctx.settings, ctx)
    document = app.openapi()["paths"]
    for route in _flat(app.routes):
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods:
                operation = document[route.path_format][method.lower()]
                assert operation.get("summary"), (method, route.path)
                if route.body_field is not None:
                    assert "requestBody" in operation, (method, route.path)


async def test_the_lane_answers_the_same_in_front_of_the_routing_and_behind_it(ctx: Context) -> None:
    """With the front door closed, FastAPI's routing reaches the very same lane: same answers."""
    behind = create_app(ctx.settings, ctx)
    behind.lanes = {}  # type: ignore[attr-defined]
    for app in (create_app(ctx.settings, ctx), behind):
        async with _client(app) as http:
            browser = Passkeys(http)
            name = unique_name()
            signed_up = await browser.register(name)
            assert signed_up.status_code == 200 and signed_up.json()["user_name"] == name
            assert "HttpOnly" in signed_up.headers["set-cookie"]
            assert signed_up.headers["cache-control"] == "no-store"  # the guard's headers, both ways
            assert signed_up.headers["content-security-policy"]
            me = (await browser.me()).json()
            assert me["user_name"] == name and me["stepup_fresh"] is True
            assert (await browser.login(name)).status_code == 200
            bad = await http.post(
                "/auth/login/finish", content=b"{", headers={"content-type": "application/json"}
            )
            assert bad.status_code == 400 and bad.json()["code"] == "invalid_json"
            plain = await http.post(
                "/auth/register/begin", content=b'{"user_name": "x"}', headers={"content-type": "text/plain"}
            )
            assert plain.status_code == 400 and plain.json()["code"] == "invalid_request"
            cross = await http.post("/auth/login/begin", json={}, headers={"origin": "https://evil.example"})
            assert cross.status_code == 403 and cross.json()["code"] == "cross_site_request"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/auth/login/finish"), ("PUT", "/auth/me"), ("DELETE", "/auth/register/begin")],
)
async def test_another_method_on_a_lane_path_is_405(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    answer = await client.request(method, path)
    assert answer.status_code == 405 and answer.json()["code"] == "method_not_allowed"


class _Transport:
    def __init__(self) -> None:
        self.sent: list[object] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        self.sent.append("closed")

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_the_writes_of_one_turn_leave_as_one() -> None:
    real = _Transport()
    corked = CorkedTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
    corked.write(b"")
    corked.write(b'{"ok":true}')
    assert real.sent == []
    await asyncio.sleep(0)
    assert real.sent == [b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}']
    corked.write(b"last")
    corked.close()  # held writes go out before the connection closes
    assert real.sent[1:] == [b"last", "closed"]
    assert corked.get_extra_info("peername") == "info:peername"
