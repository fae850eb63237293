"""The lanes (web/lanes.py): the sign-in endpoints answered in front of FastAPI's routing are the same
endpoints FastAPI documents and would route to; `passgate serve` writes an answer in one piece."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from flows import ORIGIN, Passkeys, unique_name
from passgate.services.context import Context
from passgate.web.app import create_app
from passgate.web.server import CorkedTransport

LANES = {
    ("POST", "/auth/register/begin"),
    ("POST", "/auth/register/finish"),
    ("POST", "/auth/login/begin"),
    ("POST", "/auth/login/finish"),
    ("GET", "/auth/me"),
}


def _flat(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        yield from _flat(included.routes) if included is not None else [route]


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=ORIGIN, headers={"origin": ORIGIN}
    )


def test_every_lane_is_a_documented_route_that_answers_with_the_lane(ctx: Context) -> None:
    app = create_app(ctx.settings, ctx)
    assert set(app.lanes) == LANES  # type: ignore[attr-defined]
    routes = {
        (method, route.path): route
        for route in _flat(app.routes)
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    document = app.openapi()["paths"]
    for method, path in LANES:
        route = routes[(method, path)]
        assert route.lane is app.lanes[(method, path)].app  # type: ignore[attr-defined]  # the guard wraps it
        operation = document[path][method.lower()]
        assert "$ref" in str(operation["responses"]["200"]["content"]["application/json"]["schema"])
        assert ("requestBody" in operation) == (method == "POST"), path


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
