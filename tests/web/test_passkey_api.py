"""The passkey API for other backends, as Hanko's clients call it: registration, login (discoverable and
named), transactions, credentials, JWKS; each contract error; and what Passgate does stricter."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from apikit import Backend, Tenant, backend_client, make_tenant, problem
from passgate.services import passkey_tenants
from passgate.services.context import Context
from seckit import audit_kinds, challenge_stored, credential_row, module_app
from softkey import SoftAuthenticator, b64url_decode

ctx, app = module_app("passkeyapi")


@pytest.fixture(scope="module")
def tenant(ctx: Context) -> Tenant:
    return make_tenant(ctx)


@pytest.fixture
async def backend(app: Any, tenant: Tenant) -> AsyncIterator[Backend]:
    async with backend_client(app) as http:
        yield Backend(http, tenant)


def uid() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- registration and login


async def test_registration_options_are_hankos(backend: Backend) -> None:
    user = uid()
    response = await backend.post(
        "/registration/initialize", {"user_id": user, "username": "ann@example.com"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.content.endswith(b"\n")
    options = response.json()["publicKey"]
    assert options["rp"] == {"name": "shop", "id": "localhost"}
    assert options["user"]["id"] == base64.urlsafe_b64encode(user.encode()).rstrip(b"=").decode()
    assert options["user"]["name"] == options["user"]["displayName"] == "ann@example.com"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["timeout"] == 60000
    assert len(b64url_decode(options["challenge"])) == 32


async def test_register_then_sign_in_discoverable_and_named(backend: Backend, ctx: Context) -> None:
    user = uid()
    registered = await backend.claims(await backend.register(user, "ann"))
    assert registered["sub"] == user
    assert registered["aud"] == ["localhost"]
    assert registered["exp"] == registered["iat"] + 300
    assert "trans" not in registered
    for user_id in (None, user):
        claims = await backend.claims(await backend.login(user_id))
        assert claims["sub"] == user and claims["cred"] == registered["cred"]
        assert claims["uv"] is True and "user" in claims["amr"]
        assert abs(claims["auth_time"] - time.time()) < 5
    row = credential_row(ctx, b64url_decode(registered["cred"]))
    assert row["sign_count"] == 2  # stored (Hanko keeps none)


async def test_bodiless_login_initialize_needs_no_key(backend: Backend) -> None:
    response = await backend.http.post(
        backend.base + "/login/initialize", headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    options = response.json()["publicKey"]
    assert "allowCredentials" not in options or options["allowCredentials"] == []
    assert options["rpId"] == "localhost" and options["userVerification"] == "required"


async def test_a_wrong_key_sent_to_a_public_route_is_harmless(backend: Backend) -> None:
    response = await backend.http.post(
        backend.base + "/login/initialize", headers={"apikey": "wrong", "content-type": "application/json"}
    )
    assert response.status_code == 200
    jwks = await backend.http.get(backend.base + "/.well-known/jwks.json", headers={"apikey": "wrong"})
    assert jwks.status_code == 200


async def test_named_login_lists_the_users_credentials(backend: Backend) -> None:
    user = uid()
    registered = await backend.claims(await backend.register(user))
    response = await backend.post("/login/initialize", {"user_id": user})
    allowed = response.json()["publicKey"]["allowCredentials"]
    assert [item["id"] for item in allowed] == [registered["cred"]]


# --------------------------------------------------------------------------- the apiKey header


@pytest.mark.parametrize("header", ["apiKey", "APIKEY", "apikey"])
async def test_the_api_key_header_is_case_insensitive_and_trimmed(backend: Backend, header: str) -> None:
    response = await backend.http.post(
        backend.base + "/registration/initialize",
        json={"user_id": uid(), "username": "x"},
        headers={header: f"  {backend.tenant.api_key} "},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("key", [None, "", "wrong", "Bearer x"])
async def test_a_missing_or_wrong_key_is_401_and_issues_nothing(backend: Backend, key: str | None) -> None:
    headers = {"content-type": "application/json"} | ({"apiKey": key} if key is not None else {})
    response = await backend.http.post(
        backend.base + "/registration/initialize", json={"user_id": uid(), "username": "x"}, headers=headers
    )
    body = problem(response, 401, "The api key is invalid")
    assert body["details"] == "api keys needs to be an apiKey Header and 32 byte long"


async def test_named_login_needs_the_key(backend: Backend) -> None:
    url = backend.base + "/login/initialize"
    missing = await backend.http.post(url, json={"user_id": "x"})
    problem(missing, 401, "api key is missing")
    wrong = await backend.http.post(url, json={"user_id": "x"}, headers={"apikey": "nope"})
    problem(wrong, 401, "The api key is invalid")


async def test_a_revoked_key_stops_at_once(app: Any, ctx: Context) -> None:
    tenant = make_tenant(ctx)
    async with backend_client(app) as http:
        backend = Backend(http, tenant)
        assert (await backend.get("/credentials")).status_code == 200
        (key,) = passkey_tenants.list_api_keys(ctx, tenant.id)
        passkey_tenants.revoke_api_key(ctx, tenant.id, key.id)
        problem(await backend.get("/credentials"), 401, "The api key is invalid")
    assert "api_key_revoked" in audit_kinds(ctx)


async def test_api_keys_are_stored_hashed_and_long(ctx: Context, tenant: Tenant) -> None:
    assert len(base64.urlsafe_b64decode(tenant.api_key)) == 64
    from sqlalchemy import select

    from passgate.store.models import api_keys

    rows = ctx.db.transact(lambda c: list(c.execute(select(api_keys.c.secret_hash))))
    assert all(tenant.api_key.encode() not in row[0] for row in rows)
    assert hashlib.sha256(tenant.api_key.encode()).digest() in {row[0] for row in rows}


# --------------------------------------------------------------------------- tenants in the path


async def test_a_tenant_id_that_is_not_a_uuid_is_400(backend: Backend) -> None:
    response = await backend.http.post("/passkeys/not-a-uuid/login/initialize")
    problem(response, 400, "tenant_id must be a valid uuid4")


@pytest.mark.parametrize("tenant_id", [str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000"])
async def test_an_unknown_tenant_and_the_first_party_one_are_404(backend: Backend, tenant_id: str) -> None:
    response = await backend.http.post(f"/passkeys/{tenant_id}/login/initialize")
    problem(response, 404, "tenant not found")


async def test_an_unknown_path_is_hankos_404(backend: Backend) -> None:
    problem(await backend.post("/nothing/here", {}), 404, "Not Found")


# --------------------------------------------------------------------------- bad input: clear 4xx


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"username": "x"}, "user_id is a required field"),
        ({"user_id": "u"}, "username is a required field"),
        ({}, "user_id is a required field and username is a required field"),
        ({"user_id": "u", "username": "x" * 129}, "username cannot have more than 128 entries"),
        ({"user_id": "u" * 65, "username": "x"}, "user_id cannot be longer than 64 bytes"),
        ({"user_id": 5, "username": "x"}, "user_id must be a string"),
    ],
)
async def test_invalid_registration_bodies(backend: Backend, body: dict[str, Any], details: str) -> None:
    response = await backend.post("/registration/initialize", body)
    assert problem(response, 400, "unable to validate request")["details"] == details


@pytest.mark.parametrize("raw", [b"{", b"[1]", b"null", b"\xff\xfe", b'"text"'])
async def test_unreadable_bodies_are_400(backend: Backend, raw: bytes) -> None:
    for path in ("/registration/initialize", "/registration/finalize", "/login/finalize"):
        response = await backend.http.post(backend.base + path, content=raw, headers=backend.headers)
        assert response.status_code == 400, (path, response.text)
        assert set(response.json()) == {"title", "details", "status"}


async def test_initialize_needs_a_json_content_type(backend: Backend) -> None:
    response = await backend.http.post(
        backend.base + "/registration/initialize",
        content=json.dumps({"user_id": "u", "username": "x"}),
        headers={"apikey": backend.tenant.api_key, "content-type": "text/plain"},
    )
    problem(response, 400, "unable to process request")


@pytest.mark.parametrize(
    "credential",
    [
        {},
        {"id": "", "type": "public-key", "response": {}},
        {"id": "abc", "type": "other", "response": {}},
        {"id": "a+b/", "type": "public-key", "response": {}},
        {"id": "abc", "type": "public-key", "response": "x"},
        {"id": "abc", "type": "public-key", "response": {"clientDataJSON": "!!"}},
    ],
)
async def test_malformed_credentials_are_400_for_registration(
    backend: Backend, credential: dict[str, Any]
) -> None:
    response = await backend.post("/registration/finalize", credential, key=False)
    problem(response, 400, "unable to parse credential creation response")


async def test_a_replayed_registration_is_refused(backend: Backend) -> None:
    begin = await backend.post("/registration/initialize", {"user_id": uid(), "username": "x"})
    credential = backend.authenticator.create(begin.json(), origin=backend.tenant.origin)
    assert (await backend.post("/registration/finalize", credential)).status_code == 200
    again = await backend.post("/registration/finalize", credential)
    problem(again, 400, "received challenge does not match with any stored one")


async def test_a_wrong_origin_fails_attestation_and_burns_the_challenge(
    backend: Backend, ctx: Context
) -> None:
    begin = await backend.post("/registration/initialize", {"user_id": uid(), "username": "x"})
    credential = backend.authenticator.create(begin.json(), origin="http://localhost:8000")
    problem(await backend.post("/registration/finalize", credential), 400, "failed to validate attestation")
    assert not challenge_stored(ctx, begin.json())


async def test_registration_without_user_verification_is_refused(backend: Backend) -> None:
    response = await backend.register(uid(), uv=False)
    problem(response, 400, "failed to validate attestation")


# --------------------------------------------------------------------------- login failures look alike


async def test_login_failures(backend: Backend, ctx: Context) -> None:
    user = uid()
    await backend.claims(await backend.register(user))
    begin = await backend.post("/login/initialize")
    bad = backend.authenticator.get(begin.json(), origin=backend.tenant.origin, tamper_signature=True)
    problem(await backend.post("/login/finalize", bad), 401, "failed to validate assertion")
    problem(await backend.post("/login/finalize", bad), 401, "failed to get session data")
    stranger = SoftAuthenticator()
    other = Backend(backend.http, backend.tenant, stranger)
    begin = await backend.post("/login/initialize")
    stranger.create(
        (await backend.post("/registration/initialize", {"user_id": uid(), "username": "x"})).json(),
        origin=backend.tenant.origin,
    )  # never finalized: the credential is unknown here
    unknown = stranger.get(begin.json(), origin=backend.tenant.origin)
    problem(await other.post("/login/finalize", unknown), 401, "failed to validate assertion")


async def test_a_discoverable_login_needs_the_user_handle(backend: Backend) -> None:
    await backend.claims(await backend.register(uid()))
    response = await backend.login(user_handle=None)
    problem(response, 401, "failed to validate assertion")


async def test_a_sign_count_regression_is_refused_flagged_and_audited(backend: Backend, ctx: Context) -> None:
    user = uid()
    claims = await backend.claims(await backend.register(user))
    await backend.claims(await backend.login(user, sign_count=10))
    problem(await backend.login(user, sign_count=5), 401, "failed to validate assertion")
    row = credential_row(ctx, b64url_decode(claims["cred"]))
    assert row["flagged_at"] is not None and row["sign_count"] == 10
    assert "credential_flagged" in audit_kinds(ctx)
    # a flagged credential signs nothing more, even with a higher count, and is no longer offered
    problem(
        await backend.post("/login/initialize", {"user_id": user}),
        400,
        "user has no suitable credentials for this operation",
    )
    begin = await backend.post("/login/initialize")
    later = backend.authenticator.get(begin.json(), origin=backend.tenant.origin, sign_count=50)
    problem(await backend.post("/login/finalize", later), 401, "failed to validate assertion")


async def test_named_login_unknown_user_and_user_without_credentials(backend: Backend) -> None:
    problem(await backend.post("/login/initialize", {"user_id": uid()}), 404, "user not found")
