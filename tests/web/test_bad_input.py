"""Issue 2 item 11: every POST endpoint of the `/auth` API answers bad input with a clean 4xx JSON error
(`{"error", "code"}`), never a 5xx, never a stack trace or a library's message; cross-site POSTs are
refused. The endpoints are read from the routers, so a new endpoint is covered as soon as it exists.
"""

from __future__ import annotations

import base64
import types
import typing
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from flows import ORIGIN, Passkeys
from passgate.services.context import Context
from passgate.web.routes import account, auth, device
from seckit import client_for, module_app

ROUTES = [
    route
    for router in (auth.router, account.router, device.router)
    for route in router.routes
    if isinstance(route, APIRoute) and "POST" in (route.methods or ())
]


def params(routes: list[APIRoute]) -> list[Any]:
    return [pytest.param(route, id=route.path) for route in routes]


ALL_POST = params(ROUTES)
WITH_BODY = params([route for route in ROUTES if route.body_field is not None])
WITHOUT_BODY = params([route for route in ROUTES if route.body_field is None])
FINISHES = params(
    [route for route in ROUTES if route.body_field is not None and route.path.endswith("/finish")]
)
TOO_DEEP = b"[" * 3000 + b"]" * 3000  # past the JSON decoder's recursion limit, under the size limit


def body_model(route: APIRoute) -> type[BaseModel]:
    assert route.body_field is not None
    annotation = route.body_field.field_info.annotation
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    raise AssertionError(f"no body model for {route.path}")


def minimal_body(model: type[BaseModel]) -> dict[str, Any]:
    """Every required field as "AAAA" (valid base64url, a valid name); enough for strict flat models."""
    return {name: "AAAA" for name, field in model.model_fields.items() if field.is_required()}


def assert_clean_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A 4xx JSON error: the expected status, `error` and `code`, nothing leaked."""
    assert response.status_code < 500, f"{response.status_code}: {response.text}"
    if statuses:
        assert response.status_code in statuses, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("code"), str) and body["code"], body
    for leak in ("Traceback", 'File "', "pydantic", "webauthn.helpers", "sqlalchemy", "Exception"):
        assert leak not in response.text, response.text
    return body


ctx, app = module_app("bad-input", max_body_bytes=8192)


@pytest.fixture
async def signed_in(ctx: Context, app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in with a fresh passkey (so signed-in endpoints reach their body validation)."""
    async with client_for(ctx, ORIGIN, app) as http:
        assert (await Passkeys(http).register()).status_code == 200
        yield http


BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("malformed-json", {"content": b'{"user_name": ', "headers": {"content-type": "application/json"}}),
    (
        "truncated-utf8",
        {"content": b'{"user_name": "\xc3"}', "headers": {"content-type": "application/json"}},
    ),
    ("json-array", {"json": []}),
    ("json-string", {"json": "user"}),
    ("json-number", {"json": 7}),
    ("too-deep", {"content": TOO_DEEP, "headers": {"content-type": "application/json"}}),
    (
        "form-encoded",
        {"content": b"user_name=x", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    ),
    ("text-plain", {"content": b'{"user_name": "x"}', "headers": {"content-type": "text/plain"}}),
    (
        "wrong-types",
        {
            "json": {
                name: {"nested": [1]}
                for name in [
                    "user_name",
                    "display_name",
                    "token",
                    "name",
                    "session_id",
                    "credential_id",
                    "id",
                    "rawId",
                    "type",
                    "response",
                    "authenticatorAttachment",
                ]
            }
        },
    ),
]


@pytest.mark.parametrize("route", WITH_BODY)
async def test_malformed_bodies_get_a_clean_400(signed_in: httpx.AsyncClient, route: APIRoute) -> None:
    for name, request in BAD_BODIES:
        response = await signed_in.post(route.path, **request)
        body = assert_clean_error(response, 400)
        assert body["code"] in {"invalid_json", "invalid_request", "http_error"}, (name, body)


@pytest.mark.parametrize("route", WITHOUT_BODY)
async def test_bodyless_endpoints_ignore_garbage_without_5xx(
    signed_in: httpx.AsyncClient, route: APIRoute
) -> None:
    for _name, request in BAD_BODIES:
        response = await signed_in.post(route.path, **request)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert_clean_error(response)


# Credential bodies accept extra members on purpose (WebAuthn's JSON grows); every other body forbids them.
STRICT_BODIES = params(
    [
        route
        for route in ROUTES
        if route.body_field is not None and body_model(route).model_config.get("extra") == "forbid"
    ]
)


@pytest.mark.parametrize("route", STRICT_BODIES)
async def test_unknown_fields_refused_where_the_schema_forbids_them(
    signed_in: httpx.AsyncClient, route: APIRoute
) -> None:
    model = body_model(route)
    response = await signed_in.post(route.path, json={**minimal_body(model), "is_admin": True})
    body = assert_clean_error(response, 400)
    assert body["code"] == "invalid_request" and "is_admin" in body["error"]


@pytest.mark.parametrize("route", WITH_BODY)
async def test_oversized_body_with_content_length(signed_in: httpx.AsyncClient, route: APIRoute) -> None:
    padding = "A" * 9000
    response = await signed_in.post(route.path, json={"user_name": padding, "token": padding})
    assert_clean_error(response, 413)
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize("route", WITH_BODY)
async def test_oversized_body_chunked(signed_in: httpx.AsyncClient, route: APIRoute) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"user_name": "'
        for _ in range(10):
            yield b"A" * 1000
        yield b'"}'

    response = await signed_in.post(
        route.path, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_clean_error(response, 413)
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize("route", WITHOUT_BODY)
async def test_oversized_body_with_content_length_on_bodyless_endpoints(
    signed_in: httpx.AsyncClient, route: APIRoute
) -> None:
    response = await signed_in.post(route.path, content=b"A" * 9000)
    assert_clean_error(response, 413)


STD = base64.b64encode(b"\xfb\xff\xfe" * 11).decode()
BAD_IDS = [
    pytest.param("AAAAAA==", id="padded"),
    pytest.param(STD, id="std-base64"),
    pytest.param("AA AA", id="space"),
    pytest.param("AAAA\n", id="newline"),
    pytest.param("", id="empty"),
    pytest.param("A", id="impossible-length"),
    pytest.param("%41%41", id="percent-encoded"),
]


@pytest.mark.parametrize("value", BAD_IDS)
@pytest.mark.parametrize("path", ["/auth/rename-credential", "/auth/delete-credential"])
async def test_credential_id_not_base64url(signed_in: httpx.AsyncClient, path: str, value: str) -> None:
    response = await signed_in.post(path, json={"credential_id": value, "name": "x"})
    body = assert_clean_error(response, 400)
    assert body["code"] in {"invalid_request", "invalid_base64url"}


@pytest.mark.parametrize("value", BAD_IDS)
@pytest.mark.parametrize("field", ["id", "rawId"])
@pytest.mark.parametrize("route", FINISHES)
async def test_finish_with_bad_base64url_ids(
    signed_in: httpx.AsyncClient, route: APIRoute, field: str, value: str
) -> None:
    credential: dict[str, Any] = {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {
            "clientDataJSON": "e30",
            "attestationObject": "oA",
            "authenticatorData": "AAAA",
            "signature": "AAAA",
        },
        field: value,
    }
    assert_clean_error(await signed_in.post(route.path, json=credential), 400)


@pytest.mark.parametrize("route", FINISHES)
async def test_finish_with_structurally_valid_garbage(signed_in: httpx.AsyncClient, route: APIRoute) -> None:
    """Passes the schema, then fails inside the ceremony: still a clean 400."""
    garbage = {"type": "webauthn.create", "challenge": "AAAAAAAAAAAAAAAAAAAAAA", "origin": ORIGIN}
    import json

    client_data = base64.urlsafe_b64encode(json.dumps(garbage).encode()).rstrip(b"=").decode()
    credential = {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {
            "clientDataJSON": client_data,
            "attestationObject": "oA",
            "authenticatorData": "AAAA",
            "signature": "AAAA",
            "userHandle": "AAAA",
            "transports": ["internal", "x" * 32],
        },
        "clientExtensionResults": {"credProps": {"rk": "yes"}},
    }
    assert_clean_error(await signed_in.post(route.path, json=credential), 400)


CROSS_SITE = ["https://evil.example", "null", ORIGIN + "/", "http://localhost:8001", "https://localhost:8000"]


@pytest.mark.parametrize("route", ALL_POST)
async def test_cross_site_post_refused(signed_in: httpx.AsyncClient, route: APIRoute) -> None:
    """CSRF: a POST from another origin carrying the session cookie is refused before anything runs."""
    for origin in CROSS_SITE:
        response = await signed_in.post(route.path, json={}, headers={"origin": origin})
        body = assert_clean_error(response, 403)
        assert body["code"] == "cross_site_request", origin
        assert "set-cookie" not in response.headers
    assert (await signed_in.get("/auth/me")).status_code == 200, "a refused request ended the session"


async def test_every_post_endpoint_is_covered() -> None:
    """The routers hold the endpoints this module exercises (a sanity check on the discovery)."""
    paths = {route.path for route in ROUTES}
    assert {
        "/auth/register/finish",
        "/auth/login/finish",
        "/auth/credentials/finish",
        "/auth/device/finish",
    } <= paths
    assert len(paths) >= 15


NON_ASCII_LINKS = [
    pytest.param("ж.b.c", id="cyrillic"),
    pytest.param("a.b.ﬁ", id="ligature"),
    pytest.param("\u212aite.b.c", id="kelvin-sign"),  # lower-cases to ASCII `k`
    pytest.param("é.b.c", id="latin-1"),
    pytest.param("a.b.c\u0301", id="combining"),
]


@pytest.mark.parametrize("passphrase", NON_ASCII_LINKS)
async def test_a_non_ascii_device_link_opens_the_invalid_link_page(
    signed_in: httpx.AsyncClient, passphrase: str
) -> None:
    """`GET /auth/<non-Latin-1 word>.<word>.<word>` was a 500 (the passphrase went into a cookie)."""
    response = await signed_in.get(f"/auth/{passphrase}")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/device?link=invalid"
    assert "set-cookie" not in response.headers
    for body in ({"token": passphrase}, {"token": passphrase.upper()}):
        refused = await signed_in.post("/auth/validate-device-token", json=body)
        assert assert_clean_error(refused, 400)["code"] == "link_invalid"
