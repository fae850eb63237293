"""Every answer of the app carries the same security headers as its ordinary pages: the guard's own
refusals (403 cross-site, 413 too large), rate limits (429), framework errors (404, 405, 400) and the
last-resort 500 too. (The answers `passgate serve` writes before the app — 400, 408, 431, 503 — are
checked against a real server in tests/web/test_serve_limits.py.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from appkit import make_settings
from passgate.services.context import Context
from passgate.web.app import create_app
from passgate.web.guard import answer_headers

ORIGIN = "https://localhost:8443"  # https: HSTS is part of the set
STRICTER = {(b"referrer-policy", "no-referrer")}  # a route may choose a stricter value (device links do)


@pytest.fixture(scope="module")
def https_ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    settings = make_settings(
        tmp_path_factory.mktemp("headers"), origins=[ORIGIN], rate_limit="3/minute", max_body_bytes=8192
    )
    ctx = Context.build(settings)
    ctx.db.migrate()
    yield ctx
    ctx.db.dispose()


@pytest.fixture
async def http(https_ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(https_ctx.settings, https_ctx)

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-boom", boom)  # a route with a bug, for the last-resort 500
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers={"origin": ORIGIN}) as client:
        yield client


def assert_security_headers(response: httpx.Response, expected: list[tuple[bytes, bytes]]) -> None:
    for name, value in expected:
        if name == b"cache-control" and not response.request.url.path.startswith("/auth"):
            continue
        actual = response.headers.get(name.decode())
        if (name, actual) in STRICTER:
            continue
        assert actual == value.decode(), (
            f"{response.status_code} {response.request.url.path}: {name.decode()} is "
            f"{response.headers.get(name.decode())!r}"
        )


async def _chunks() -> AsyncIterator[bytes]:
    for _ in range(10):
        yield b"A" * 1000


async def test_every_answer_carries_the_security_headers(http: httpx.AsyncClient, https_ctx: Context) -> None:
    expected = answer_headers(https_ctx.settings)
    assert {name for name, _ in expected} >= {
        b"x-content-type-options",
        b"x-frame-options",
        b"referrer-policy",
        b"content-security-policy",
        b"strict-transport-security",
    }
    answers: dict[str, Any] = {
        "200 lane": await http.post("/auth/login/begin", json={}),  # lanes write the guard's headers
        "page": await http.get("/signin"),
        "401": await http.get("/auth/me"),
        "403 cross-site": await http.post("/auth/logout", headers={"origin": "https://evil.example"}),
        "413 declared": await http.post("/auth/login/begin", content=b"{" * 9000),
        "413 chunked": await http.post(
            "/auth/login/begin", content=_chunks(), headers={"content-type": "application/json"}
        ),
        "400": await http.post(
            "/auth/login/begin", content=b"{", headers={"content-type": "application/json"}
        ),
        "404": await http.get("/auth/nothing/here"),
        "404 passkey API lane": await http.post(f"/passkeys/{uuid.uuid4()}/login/initialize", json={}),
        "405": await http.put("/auth/me"),
        "303": await http.get("/auth/no.such.link"),
        "static": await http.get("/static/passgate.css"),
        "500": await http.get("/test-boom"),
    }
    for _ in range(4):
        answers["429"] = await http.post("/auth/register/begin", json={"user_name": "someone"})
    for label, response in answers.items():
        code = label.split()[0]
        assert str(response.status_code) == code or not code.isdigit(), (label, response.status_code)
        assert "Traceback" not in response.text
        assert_security_headers(response, expected)
    assert answers["500"].json()["code"] == "internal_error"
