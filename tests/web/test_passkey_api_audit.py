"""`GET /passkeys/{tenant}/audit_logs`: every ceremony and credential change of the passkey API recorded
with Hanko's event types and audit_log shape (who, from where, which request, which transaction), paged
with `Link` and `X-Total-Count` like the credentials, filtered as Hanko's query says; bad query values
answered `400 unable to list audit logs`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apikit import Backend, backend_client, make_tenant, problem, uid
from passgate.services.context import Context
from seckit import module_app
from softkey import SoftAuthenticator

ctx, app = module_app("passkeyapi_audit")
FIELDS = {
    "id",
    "type",
    "meta_http_request_id",
    "meta_source_ip",
    "meta_user_agent",
    "created_at",
    "updated_at",
    "tenant_id",
    "transaction_id",
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
async def backend(app: Any, ctx: Context) -> AsyncIterator[Backend]:
    """A tenant of its own per test: its log holds exactly what the test did."""
    async with backend_client(app) as http:
        yield Backend(http, make_tenant(ctx))


async def logs(backend: Backend, **query: Any) -> list[dict[str, Any]]:
    response = await backend.get("/audit_logs", per_page=100, **query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


def types(items: list[dict[str, Any]]) -> list[str]:
    return [item["type"] for item in reversed(items)]  # oldest first, to read like the test


def api_calls(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of API calls (Hanko's types), with who called and from where; not Passgate's own
    (`tenant_added`, `credential_added`, …), which record what changed only."""
    return [item for item in items if item["type"].startswith(("webauthn_", "mfa_"))]


async def test_every_ceremony_is_recorded_with_hankos_types(backend: Backend) -> None:
    user, transaction_id = uid(), uid()
    passkey = (await backend.claims(await backend.register(user)))["cred"]
    await backend.claims(await backend.login())
    await backend.claims(await backend.login(user))
    begin = await backend.post(
        "/transaction/initialize", {"user_id": user, "transaction_id": transaction_id, "transaction_data": 1}
    )
    signed = backend.authenticator.get(begin.json(), origin=backend.tenant.origin)
    await backend.claims(await backend.post("/transaction/finalize", signed))
    key = Backend(backend.http, backend.tenant, SoftAuthenticator())
    await key.claims(await key.mfa_register(user))
    await key.claims(await key.mfa_login(user))
    url = f"{backend.base}/credentials/{passkey}"
    await backend.http.patch(url, json={"name": "Laptop"}, headers=backend.headers)
    await backend.http.delete(url, headers=backend.headers)
    items = await logs(backend)
    assert types(items) == [
        "tenant_added",
        "api_key_added",
        "webauthn_registration_init_succeeded",
        "credential_added",
        "webauthn_registration_final_succeeded",
        "webauthn_authentication_init_succeeded",
        "webauthn_authentication_final_succeeded",
        "webauthn_authentication_init_succeeded",
        "webauthn_authentication_final_succeeded",
        "webauthn_transaction_init_succeeded",
        "webauthn_transaction_final_succeeded",
        "mfa_registration_init_succeeded",
        "credential_added",
        "mfa_registration_final_succeeded",
        "mfa_authentication_init_succeeded",
        "mfa_authentication_final_succeeded",
        "webauthn_credential_updated",
        "webauthn_credential_deleted",
    ]
    discoverable_init = items[-6]
    assert "actor_user_id" not in discoverable_init  # a discoverable login names no one at first
    for item in api_calls(items):
        assert set(item) >= FIELDS and "error" not in item, item
        assert item["tenant_id"] == backend.tenant.id and UUID.fullmatch(item["id"])
        assert item["created_at"] == item["updated_at"] and item["created_at"].endswith("Z")
        assert item["meta_source_ip"] == "127.0.0.1" and item["meta_user_agent"].startswith("python-httpx/")
        assert item is discoverable_init or item["actor_user_id"] == user
    transaction = [item for item in items if item["type"].startswith("webauthn_transaction")]
    assert {item["transaction_id"] for item in transaction} == {transaction_id}
    assert all(item["transaction_id"] is None for item in items if item not in transaction)
    deleted = items[0]
    assert deleted["detail"] == {"credential_id": passkey}
    assert len({item["id"] for item in items}) == len(items)


async def test_failures_are_recorded_with_their_error(backend: Backend) -> None:
    user = uid()
    await backend.claims(await backend.register(user))
    begin = await backend.post("/login/initialize", {"user_id": user})
    bad = backend.authenticator.get(begin.json(), origin=backend.tenant.origin, tamper_signature=True)
    await backend.post("/login/finalize", bad)
    await backend.post("/login/finalize", bad)  # an unknown challenge: nothing to record
    body = {"user_id": "nobody", "transaction_id": "t", "transaction_data": 1}
    await backend.post("/transaction/initialize", body)
    items = await logs(backend, type="webauthn_authentication_final_failed,webauthn_transaction_init_failed")
    failed_login, failed_transaction = reversed(items)
    assert failed_login["error"] == "failed to validate assertion" and failed_login["actor_user_id"] == user
    assert failed_transaction["error"] == "unable to find user"
    assert failed_transaction["actor_user_id"] == "nobody" and failed_transaction["transaction_id"] == "t"


async def test_a_failed_discoverable_login_names_the_credentials_owner(backend: Backend) -> None:
    user = uid()
    await backend.claims(await backend.register(user))
    for mangle in ({"tamper_signature": True}, {"raw_id_override": "!!"}):
        begin = await backend.post("/login/initialize")
        bad = backend.authenticator.get(begin.json(), origin=backend.tenant.origin, **mangle)
        problem(await backend.post("/login/finalize", bad), 401, "failed to validate assertion")
    unreadable, forged = await logs(backend, type="webauthn_authentication_final_failed")
    assert forged["actor_user_id"] == user  # the account someone tried to sign in to
    assert "actor_user_id" not in unreadable  # a rawId no one can read names no one


async def test_a_sign_count_regression_is_in_the_log(backend: Backend) -> None:
    user = uid()
    cred = (await backend.claims(await backend.register(user)))["cred"]
    await backend.claims(await backend.login(user, sign_count=10))
    await backend.login(user, sign_count=3)
    (flagged,) = await logs(backend, type="credential_flagged")
    assert flagged["actor_user_id"] == user and flagged["detail"]["credential_id"] == cred
    assert flagged["detail"]["reason"] == "sign count 3 <= stored 10"


async def test_the_request_id_is_answered_and_recorded(backend: Backend) -> None:
    response = await backend.http.post(
        backend.base + "/registration/initialize",
        json={"user_id": "ann", "username": "ann"},
        headers={**backend.headers, "x-request-id": "req-42"},
    )
    assert response.headers["x-request-id"] == "req-42"
    made_up = await backend.http.get(
        backend.base + "/credentials", headers={**backend.headers, "x-request-id": "<script>"}
    )
    assert re.fullmatch(r"[0-9a-f]{32}", made_up.headers["x-request-id"])
    (event,) = await logs(backend, type="webauthn_registration_init_succeeded")
    assert event["meta_http_request_id"] == "req-42"


# --------------------------------------------------------------------------- paging and filters


async def test_paging_like_the_credentials_list(backend: Backend) -> None:
    for _ in range(3):
        await backend.post("/login/initialize")
    total = len(await logs(backend))
    assert total == 5  # tenant_added, api_key_added, three initializes
    page = await backend.get("/audit_logs", page=2, per_page=2)
    assert page.headers["x-total-count"] == "5" and len(page.json()) == 2
    link = page.headers["link"]
    for rel, number in (("first", 1), ("last", 3), ("next", 3), ("prev", 1)):
        assert f'page={number}&per_page=2>; rel="{rel}"' in link, link
    assert (await backend.get("/audit_logs", page=9)).json() == []


async def test_filters(backend: Backend) -> None:
    ann, bob = f"ann-{uid()}", f"bob-{uid()}"
    await backend.claims(await backend.register(ann))
    middle = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await backend.claims(await backend.register(bob))
    by_type = await logs(backend, type=["credential_added", "webauthn_registration_final_succeeded"])
    assert len(by_type) == 4
    assert {item["actor_user_id"] for item in await logs(backend, actor_user_id="ANN-")} == {ann}
    assert {item.get("actor_user_id") for item in await logs(backend, q=bob[:8])} == {bob}
    assert len(await logs(backend, q="127.0")) == 4  # the API calls': initialize and finalize, twice
    assert len(await logs(backend, meta_source_ip="127.0.0.1")) == 4
    assert await logs(backend, meta_source_ip="10.") == []
    assert await logs(backend, actor_user_id="%") == []  # LIKE wildcards are plain text here
    later = {item.get("actor_user_id") for item in await logs(backend, start_time=middle.isoformat())}
    assert later == {bob}
    earlier = await logs(backend, end_time=middle.isoformat().replace("+00:00", "Z"))
    assert bob not in {item.get("actor_user_id") for item in earlier} and len(earlier) == 5
    tomorrow = (middle + timedelta(days=1)).isoformat()
    assert await logs(backend, start_time=tomorrow) == []


@pytest.mark.parametrize(
    ("query", "details"),
    [
        ({"page": "0"}, "page must be a positive number"),
        ({"per_page": "x"}, "per_page must be a positive number"),
        ({"page": "-1"}, "page must be a positive number"),
        ({"start_time": "yesterday"}, "start_time must be an RFC 3339 time"),
        ({"end_time": "2024-05-01T12:00:00"}, "end_time must be an RFC 3339 time"),
        ({"q": "x" * 201}, "q cannot be longer than 200 characters"),
        ({"actor_user_id": "x" * 201}, "actor_user_id cannot be longer than 200 characters"),
        ({"type": ",".join(["t"] * 51)}, "type takes at most 50 event types"),
    ],
)
async def test_bad_query_values_are_400(backend: Backend, query: dict[str, str], details: str) -> None:
    body = problem(await backend.get("/audit_logs", **query), 400, "unable to list audit logs")
    assert body["details"].startswith(details), body


@pytest.mark.parametrize("key", [None, "", "wrong"])
async def test_the_key_is_required(backend: Backend, key: str | None) -> None:
    headers = {"apikey": key} if key is not None else {}
    response = await backend.http.get(backend.base + "/audit_logs", headers=headers)
    problem(response, 401, "The api key is invalid")


async def test_a_tenant_id_that_is_not_a_uuid_or_unknown(backend: Backend) -> None:
    problem(await backend.http.get("/passkeys/nope/audit_logs"), 400, "tenant_id must be a valid uuid4")
    problem(
        await backend.http.get(f"/passkeys/{uid()}/audit_logs", headers=backend.headers),
        404,
        "tenant not found",
    )
