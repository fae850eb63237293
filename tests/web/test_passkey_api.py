"""The passkey API for other backends, as Hanko's clients call it: registration, login (discoverable and
named), transactions, credentials, JWKS; each contract error; and what Passgate does stricter."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update

from apikit import Backend, Tenant, backend_client, make_tenant, problem, uid
from passgate.services import login as login_service
from passgate.services import passkey_api, passkey_tenants
from passgate.services.context import Context
from passgate.store.models import credentials
from seckit import after_verify, audit_kinds, challenge_stored, credential_row, module_app, write_lock_seen
from softkey import SoftAuthenticator, b64url_decode

ctx, app = module_app("passkeyapi", both_databases=True)


@pytest.fixture(scope="module")
def tenant(ctx: Context) -> Tenant:
    return make_tenant(ctx)


@pytest.fixture
async def backend(app: Any, tenant: Tenant) -> AsyncIterator[Backend]:
    async with backend_client(app) as http:
        yield Backend(http, tenant)


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


def _set_credential(ctx: Context, credential_id: bytes, **values: Any) -> Callable[[], None]:
    statement = update(credentials).where(credentials.c.credential_id == credential_id).values(**values)
    return lambda: ctx.db.transact(lambda connection: connection.execute(statement))


async def test_finalize_verifies_with_no_write_lock(
    backend: Backend, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the first-party finishes (`ceremonies.finish_verified`): on SQLite, whose one write lock
    serves the whole database, another connection takes it at once during a finalize's check."""
    if not ctx.db.is_sqlite:
        pytest.skip("SQLite's database-wide write lock")
    registering = write_lock_seen(monkeypatch, passkey_api, "finish_registration", ctx)
    user = uid()
    await backend.claims(await backend.register(user))
    signing_in = write_lock_seen(monkeypatch, login_service, "verify_assertion", ctx)
    await backend.claims(await backend.login(user))
    assert registering == signing_in == [True]


async def test_what_changes_between_check_and_write_is_seen(
    backend: Backend, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write re-reads the credential: a sign count raised meanwhile by a clone flags it (W3C
    WebAuthn L3 §6.1.1), and a credential flagged or deleted meanwhile refuses; nothing is used."""
    user = uid()
    cred = b64url_decode((await backend.claims(await backend.register(user)))["cred"])
    after_verify(monkeypatch, _set_credential(ctx, cred, sign_count=50))
    problem(await backend.login(user, sign_count=10), 401, "failed to validate assertion")
    row = credential_row(ctx, cred)
    assert row["flagged_at"] is not None and row["sign_count"] == 50

    other = uid()
    cred = b64url_decode((await backend.claims(await backend.register(other)))["cred"])
    after_verify(monkeypatch, _set_credential(ctx, cred, flagged_at=time.time(), flag_reason="x"))
    problem(await backend.login(other, sign_count=10), 401, "failed to validate assertion")
    assert credential_row(ctx, cred)["sign_count"] == 0
    _set_credential(ctx, cred, flagged_at=None, flag_reason=None)()
    gone = delete(credentials).where(credentials.c.credential_id == cred)
    after_verify(monkeypatch, lambda: ctx.db.transact(lambda connection: connection.execute(gone)))
    problem(await backend.login(other, sign_count=11), 401, "failed to validate assertion")


async def test_named_login_unknown_user_and_user_without_credentials(backend: Backend) -> None:
    problem(await backend.post("/login/initialize", {"user_id": uid()}), 404, "user not found")


# --------------------------------------------------------------------------- transactions


async def _transaction(backend: Backend, user: str, transaction_id: str, data: Any) -> httpx.Response:
    return await backend.post(
        "/transaction/initialize",
        {"user_id": user, "transaction_id": transaction_id, "transaction_data": data},
    )


async def test_a_transaction_binds_its_data_and_is_used_once(backend: Backend) -> None:
    user, transaction_id, data = uid(), uid(), {"amount": 100, "to": "DE89"}
    await backend.claims(await backend.register(user))
    begin = await _transaction(backend, user, transaction_id, data)
    assert begin.status_code == 200, begin.text
    options = begin.json()["publicKey"]
    challenge = b64url_decode(options["challenge"])
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert len(challenge) == 64
    assert challenge[32:] == hashlib.sha256((transaction_id + canonical).encode()).digest()
    assert options["userVerification"] == "required" and len(options["allowCredentials"]) == 1
    problem(await _transaction(backend, user, transaction_id, data), 409, "transaction already exists")
    credential = backend.authenticator.get(begin.json(), origin=backend.tenant.origin)
    problem(await backend.post("/transaction/finalize", credential, key=False), 401, "The api key is invalid")
    claims = await backend.claims(await backend.post("/transaction/finalize", credential))
    assert claims["trans"] == transaction_id and claims["sub"] == user and claims["uv"] is True
    again = await backend.post("/transaction/finalize", credential)
    problem(again, 401, "failed to get session data")


async def test_a_transaction_challenge_cannot_finish_a_login_or_the_reverse(backend: Backend) -> None:
    user = uid()
    await backend.claims(await backend.register(user))
    begin = await _transaction(backend, user, uid(), "pay 5")
    credential = backend.authenticator.get(begin.json(), origin=backend.tenant.origin)
    problem(await backend.post("/login/finalize", credential), 401, "failed to get session data")
    login = await backend.post("/login/initialize", {"user_id": user})
    credential = backend.authenticator.get(login.json(), origin=backend.tenant.origin)
    problem(await backend.post("/transaction/finalize", credential), 401, "failed to get session data")


async def test_a_transaction_without_user_verification_fails(backend: Backend) -> None:
    user = uid()
    await backend.claims(await backend.register(user))
    begin = await _transaction(backend, user, uid(), [1])
    credential = backend.authenticator.get(begin.json(), origin=backend.tenant.origin, uv=False)
    problem(await backend.post("/transaction/finalize", credential), 401, "failed to validate assertion")


@pytest.mark.parametrize(
    ("body", "status", "title"),
    [
        ({"transaction_id": "t", "transaction_data": 1}, 400, "unable to validate request"),
        ({"user_id": "u", "transaction_data": 1}, 400, "unable to validate request"),
        ({"user_id": "u", "transaction_id": "t"}, 400, "unable to validate request"),
        (
            {"user_id": "u", "transaction_id": "t", "transaction_data": None},
            400,
            "unable to validate request",
        ),
        (
            {"user_id": "u", "transaction_id": "t" * 129, "transaction_data": 1},
            400,
            "unable to validate request",
        ),
        ({"user_id": "nobody", "transaction_id": "t", "transaction_data": 1}, 404, "unable to find user"),
    ],
)
async def test_transaction_initialize_errors(
    backend: Backend, body: dict[str, Any], status: int, title: str
) -> None:
    problem(await backend.post("/transaction/initialize", body), status, title)


# --------------------------------------------------------------------------- credentials


async def test_credentials_list_get_rename_delete(backend: Backend, ctx: Context) -> None:
    user = uid()
    first = await backend.claims(await backend.register(user))
    phone = Backend(backend.http, backend.tenant, SoftAuthenticator())  # excluded: a second authenticator
    second = await phone.claims(await phone.register(user))
    listed = await backend.get("/credentials", user_id=user)
    assert listed.status_code == 200 and listed.headers["x-total-count"] == "2"
    items = listed.json()
    assert [item["id"] for item in items] == [second["cred"], first["cred"]]  # newest first
    item = items[0]
    assert item["user_id"] == user and item["name"] == f"cred-{item['id']}" and item["is_mfa"] is False
    assert item["aaguid"] == "00000000-0000-0000-0000-000000000000" and item["attestation_type"] == "none"
    assert {
        "public_key",
        "created_at",
        "last_used_at",
        "transports",
        "backup_eligible",
        "backup_state",
    } <= set(item)
    paged = await backend.get("/credentials", user_id=user, per_page=1, page=2, order="asc")
    assert [c["id"] for c in paged.json()] == [second["cred"]]
    assert 'rel="first"' in paged.headers["link"] and 'rel="prev"' in paged.headers["link"]
    assert (await backend.get(f"/credentials/{first['cred']}")).json()["id"] == first["cred"]
    url = backend.base + f"/credentials/{first['cred']}"
    renamed = await backend.http.patch(url, json={"name": "Laptop"}, headers=backend.headers)
    assert renamed.status_code == 204 and renamed.content == b""
    assert (await backend.get(f"/credentials/{first['cred']}")).json()["name"] == "Laptop"
    empty = await backend.http.patch(url, json={}, headers=backend.headers)
    assert problem(empty, 400, "unable to validate request")["details"] == "name is a required field"
    deleted = await backend.http.delete(url, headers=backend.headers)
    assert deleted.status_code == 204
    problem(
        await backend.http.delete(url, headers=backend.headers),
        404,
        f"credential with id '{first['cred']}' not found",
    )
    assert {"webauthn_credential_updated", "webauthn_credential_deleted"} <= set(audit_kinds(ctx))
    assert (await backend.get("/credentials", user_id="nobody")).json() == []


@pytest.mark.parametrize("query", [{"order": "up"}, {"page": "0"}, {"per_page": "x"}])
async def test_credentials_list_bad_query(backend: Backend, query: dict[str, str]) -> None:
    problem(await backend.get("/credentials", **query), 400, "unable to validate request")


# --------------------------------------------------------------------------- the guard's refusals


TOO_LARGE = {"title": "The request body is too large.", "details": "", "status": 413}


async def test_a_body_too_large_by_its_length_is_refused_in_hankos_shape(backend: Backend) -> None:
    """The guard refuses it before the route runs (web/guard.py), in this API's own error shape."""
    response = await backend.post("/registration/finalize", {"id": "A" * 70_000}, key=False)
    assert response.status_code == 413 and response.json() == TOO_LARGE
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.content.endswith(b"\n")


async def test_a_body_too_large_as_it_streams_is_refused_in_hankos_shape(backend: Backend) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"user_id": "'
        for _ in range(70):
            yield b"A" * 1000
        yield b'"}'

    response = await backend.http.post(
        backend.base + "/registration/initialize", content=chunks(), headers=backend.headers
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and response.json() == TOO_LARGE


async def test_a_cross_site_request_is_refused_in_hankos_shape(backend: Backend, ctx: Context) -> None:
    before = audit_kinds(ctx)
    response = await backend.http.post(
        backend.base + "/registration/initialize",
        json={"user_id": uid(), "username": "x"},
        headers={**backend.headers, "origin": "https://evil.example"},
    )
    assert response.status_code == 403 and response.content.endswith(b"\n")
    assert response.json() == {"title": "Cross-site requests are not allowed.", "details": "", "status": 403}
    assert audit_kinds(ctx) == before  # refused before anything ran


async def test_the_first_party_api_keeps_its_own_error_shape(backend: Backend) -> None:
    response = await backend.http.post(
        "/auth/login/begin", json={}, headers={"origin": "https://evil.example"}
    )
    assert response.status_code == 403 and response.json()["code"] == "cross_site_request"
    response = await backend.http.post("/auth/login/begin", content=b"x" * 70_000)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


# --------------------------------------------------------------------------- JWKS and key rotation


async def test_jwks_caching_and_rotation(app: Any, ctx: Context) -> None:
    tenant = make_tenant(ctx)
    async with backend_client(app) as http:
        backend = Backend(http, tenant)
        before = await backend.register(uid())
        old_kid = json.loads(base64.urlsafe_b64decode(before.json()["token"].split(".")[0] + "=="))["kid"]
        passkey_tenants.rotate_token_key(ctx, tenant.id)
        jwks = await http.get(backend.base + "/.well-known/jwks.json")
        assert jwks.headers["cache-control"] == "public, max-age=600"
        keys = jwks.json()["keys"]
        assert len(keys) == 2 and {key["kty"] for key in keys} == {"RSA"} and all("d" not in k for k in keys)
        assert (await backend.claims(before))["sub"]  # the old key still verifies its tokens
        after = await backend.login()
        new_kid = json.loads(base64.urlsafe_b64decode(after.json()["token"].split(".")[0] + "=="))["kid"]
        assert new_kid != old_kid and new_kid in {key["kid"] for key in keys}


def test_the_openapi_document_lists_the_api_under_its_tag(app: Any) -> None:
    paths = app.openapi()["paths"]
    ours = {path: item for path, item in paths.items() if path.startswith("/passkeys/")}
    assert len(ours) == 14  # 9 of registration, login, transactions, credentials, JWKS; 4 MFA; audit_logs
    for item in ours.values():
        for operation in item.values():
            assert operation["tags"] == ["passkey API (Hanko-compatible)"]
    register = ours["/passkeys/{tenant_id}/registration/initialize"]["post"]
    assert "API key of the tenant" in register["description"]
    assert "user_id" in register["requestBody"]["content"]["application/json"]["schema"]["properties"]
