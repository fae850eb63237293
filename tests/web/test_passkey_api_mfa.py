"""The passkey API's MFA routes, as Hanko's clients call them: a security key registered as a second
factor (`is_mfa`) of a backend's user and checked through `mfa/login`; MFA credentials refused for
passkey logins and transactions with the contract's 400s; every core check of W3C WebAuthn L3
§7.1/§7.2 still applied (origin, signature, single-use challenge, sign count)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from apikit import Backend, Tenant, backend_client, make_tenant, problem, uid
from passgate.services.context import Context
from seckit import audit_kinds, challenge_stored, credential_row, module_app
from softkey import SoftAuthenticator, b64url_decode

ctx, app = module_app("passkeyapi_mfa")
MFA_ROUTES = ("/mfa/registration/initialize", "/mfa/registration/finalize", "/mfa/login/initialize")


@pytest.fixture(scope="module")
def tenant(ctx: Context) -> Tenant:
    return make_tenant(ctx)


@pytest.fixture
async def backend(app: Any, tenant: Tenant) -> AsyncIterator[Backend]:
    async with backend_client(app) as http:
        yield Backend(http, tenant)


def key_of(backend: Backend) -> Backend:
    """The same backend with another authenticator: the user's security key."""
    return Backend(backend.http, backend.tenant, SoftAuthenticator())


async def user_with_passkey_and_key(backend: Backend) -> tuple[str, Backend, str, str]:
    """(user id, the backend holding the security key, passkey credential id, MFA credential id)."""
    user, key = uid(), key_of(backend)
    passkey = (await backend.claims(await backend.register(user)))["cred"]
    mfa = (await key.claims(await key.mfa_register(user)))["cred"]
    return user, key, passkey, mfa


# --------------------------------------------------------------------------- the ceremonies


async def test_mfa_registration_options_are_hankos_mfa_defaults(backend: Backend) -> None:
    user = uid()
    response = await backend.post("/mfa/registration/initialize", {"user_id": user, "username": "ann"})
    assert response.status_code == 200 and response.content.endswith(b"\n")
    options = response.json()["publicKey"]
    assert options["authenticatorSelection"] == {
        "authenticatorAttachment": "cross-platform",
        "residentKey": "discouraged",
        "requireResidentKey": False,
        "userVerification": "preferred",
    }
    assert options["rp"] == {"name": "shop", "id": "localhost"} and options["timeout"] == 60000
    assert options["user"]["id"] == base64.urlsafe_b64encode(user.encode()).rstrip(b"=").decode()
    assert len(b64url_decode(options["challenge"])) == 32


async def test_a_second_factor_registers_and_signs_in(backend: Backend, ctx: Context) -> None:
    user, key, passkey, mfa = await user_with_passkey_and_key(backend)
    listed = {item["id"]: item["is_mfa"] for item in (await backend.get("/credentials", user_id=user)).json()}
    assert listed == {passkey: False, mfa: True}
    assert (await backend.get(f"/credentials/{mfa}")).json()["is_mfa"] is True

    mfa_options = (await backend.post("/mfa/login/initialize", {"user_id": user})).json()["publicKey"]
    assert {item["id"] for item in mfa_options["allowCredentials"]} == {passkey, mfa}  # all of them
    assert mfa_options["userVerification"] == "preferred"
    named = (await backend.post("/login/initialize", {"user_id": user})).json()["publicKey"]
    assert [item["id"] for item in named["allowCredentials"]] == [passkey]  # MFA credentials left out

    # the user comes from the ceremony: no userHandle needed; UV is preferred, not required
    claims = await key.claims(await key.mfa_login(user, user_handle=None, uv=False))
    assert (claims["sub"], claims["cred"], claims["uv"]) == (user, mfa, False)
    assert credential_row(ctx, b64url_decode(mfa))["sign_count"] == 1  # stored, as for every finalize
    # a passkey may serve as the second factor too (Hanko lists every credential)
    assert (await backend.claims(await backend.mfa_login(user)))["cred"] == passkey
    kinds = audit_kinds(ctx)
    for kind in ("mfa_registration_final_succeeded", "mfa_authentication_final_succeeded"):
        assert kind in kinds


async def test_mfa_credentials_are_refused_for_login_and_transactions(backend: Backend, ctx: Context) -> None:
    user, key, _, mfa = await user_with_passkey_and_key(backend)
    mfa_id = b64url_decode(mfa)
    before = credential_row(ctx, mfa_id)
    discoverable = await backend.post("/login/initialize")
    signed = key.authenticator.get(discoverable.json(), origin=key.tenant.origin)
    problem(await key.post("/login/finalize", signed), 400, "MFA credentials are not usable for normal login")
    named = await backend.post("/login/initialize", {"user_id": user})
    signed = key.authenticator.get(named.json(), origin=key.tenant.origin, credential_id=mfa_id)
    problem(await key.post("/login/finalize", signed), 400, "MFA credentials are not usable for normal login")
    transaction = await backend.post(
        "/transaction/initialize", {"user_id": user, "transaction_id": uid(), "transaction_data": {"a": 1}}
    )
    signed = key.authenticator.get(transaction.json(), origin=key.tenant.origin, credential_id=mfa_id)
    problem(
        await key.post("/transaction/finalize", signed),
        400,
        "MFA credentials are not usable for transactions",
    )
    assert credential_row(ctx, mfa_id) == before  # nothing recorded of the refused uses
    assert not challenge_stored(ctx, transaction.json())  # and every challenge was burnt


async def test_a_user_with_only_mfa_credentials_has_none_for_login_or_transactions(backend: Backend) -> None:
    user = uid()
    await backend.claims(await backend.mfa_register(user))
    none = "user has no suitable credentials for this operation"
    problem(await backend.post("/login/initialize", {"user_id": user}), 400, none)
    body = {"user_id": user, "transaction_id": uid(), "transaction_data": 1}
    problem(await backend.post("/transaction/initialize", body), 400, none)
    assert (await backend.claims(await backend.mfa_login(user)))["sub"] == user


# --------------------------------------------------------------------------- the contract's errors


@pytest.mark.parametrize("path", [*MFA_ROUTES, "/mfa/login/finalize"])
@pytest.mark.parametrize("key", [None, "wrong"])
async def test_every_mfa_route_needs_the_key(backend: Backend, path: str, key: str | None) -> None:
    user = uid()
    await backend.claims(await backend.register(user))
    if path.endswith("initialize"):
        body: dict[str, Any] = {"user_id": user, "username": "x"}
    else:  # a real response to a real MFA ceremony: only the key is missing
        begin = await backend.post(path.replace("finalize", "initialize"), {"user_id": user, "username": "x"})
        sign = SoftAuthenticator().create if "registration" in path else backend.authenticator.get
        body = sign(begin.json(), origin=backend.tenant.origin)
    headers = {"content-type": "application/json"} | ({"apikey": key} if key else {})
    response = await backend.http.post(backend.base + path, json=body, headers=headers)
    problem(response, 401, "The api key is invalid")


@pytest.mark.parametrize(
    ("body", "status", "title", "details"),
    [
        (None, 400, "unable to validate request", "user_id is a required field"),
        ({"user_id": ""}, 400, "unable to validate request", "user_id is a required field"),
        ({"user_id": "u" * 65}, 400, "unable to validate request", "user_id cannot be longer than 64 bytes"),
        ({"user_id": "nobody-here"}, 404, "user not found", ""),
    ],
)
async def test_mfa_login_initialize_errors(
    backend: Backend, body: dict[str, Any] | None, status: int, title: str, details: str
) -> None:
    assert problem(await backend.post("/mfa/login/initialize", body), status, title)["details"] == details


async def test_mfa_registration_validates_like_registration(backend: Backend) -> None:
    response = await backend.post("/mfa/registration/initialize", {"user_id": "u"})
    assert problem(response, 400, "unable to validate request")["details"] == "username is a required field"


async def test_mfa_and_passkey_challenges_do_not_mix(backend: Backend) -> None:
    """Stricter than Hanko, whose session only says `registration` or `authentication`."""
    user = uid()
    unknown_registration = "received challenge does not match with any stored one"
    for begin_path, finish_path in (
        ("/mfa/registration/initialize", "/registration/finalize"),
        ("/registration/initialize", "/mfa/registration/finalize"),
    ):
        begin = await backend.post(begin_path, {"user_id": user, "username": "x"})
        credential = SoftAuthenticator().create(begin.json(), origin=backend.tenant.origin)
        problem(await backend.post(finish_path, credential), 400, unknown_registration)
    await backend.claims(await backend.register(user))
    for begin_path, finish_path in (
        ("/mfa/login/initialize", "/login/finalize"),
        ("/login/initialize", "/mfa/login/finalize"),
    ):
        begin = await backend.post(begin_path, {"user_id": user})
        assertion = backend.authenticator.get(begin.json(), origin=backend.tenant.origin)
        problem(await backend.post(finish_path, assertion), 401, "failed to get session data")


# --------------------------------------------------------------------------- every core check applies


async def test_mfa_registration_checks_the_origin_and_burns_the_challenge(
    backend: Backend, ctx: Context
) -> None:
    begin = await backend.post("/mfa/registration/initialize", {"user_id": uid(), "username": "x"})
    credential = backend.authenticator.create(begin.json(), origin="http://localhost:8000")
    problem(
        await backend.post("/mfa/registration/finalize", credential), 400, "failed to validate attestation"
    )
    assert not challenge_stored(ctx, begin.json())
    again = await backend.post("/mfa/registration/finalize", credential)
    problem(again, 400, "received challenge does not match with any stored one")


async def test_mfa_login_failures(backend: Backend) -> None:
    user, key, _, _ = await user_with_passkey_and_key(backend)
    begin = await backend.post("/mfa/login/initialize", {"user_id": user})
    bad = key.authenticator.get(begin.json(), origin=key.tenant.origin, tamper_signature=True)
    problem(await key.post("/mfa/login/finalize", bad), 401, "failed to validate assertion")
    problem(await key.post("/mfa/login/finalize", bad), 401, "failed to get session data")  # burnt
    begin = await backend.post("/mfa/login/initialize", {"user_id": user})
    wrong = key.authenticator.get(begin.json(), origin=key.tenant.origin, user_handle=b"someone-else")
    problem(await key.post("/mfa/login/finalize", wrong), 401, "failed to validate assertion")
    begin = await backend.post("/mfa/login/initialize", {"user_id": user})
    elsewhere = key.authenticator.get(begin.json(), origin="https://evil.example")
    problem(await key.post("/mfa/login/finalize", elsewhere), 401, "failed to validate assertion")


async def test_another_users_key_cannot_finish_an_mfa_login(backend: Backend) -> None:
    user, _, _, _ = await user_with_passkey_and_key(backend)
    _, other_key, _, other_mfa = await user_with_passkey_and_key(backend)
    begin = await backend.post("/mfa/login/initialize", {"user_id": user})
    signed = other_key.authenticator.get(
        begin.json(), origin=other_key.tenant.origin, credential_id=b64url_decode(other_mfa)
    )
    problem(await other_key.post("/mfa/login/finalize", signed), 401, "failed to validate assertion")


async def test_an_mfa_sign_count_regression_is_refused_flagged_and_audited(
    backend: Backend, ctx: Context
) -> None:
    user, key, _, mfa = await user_with_passkey_and_key(backend)
    await key.claims(await key.mfa_login(user, sign_count=10))
    problem(await key.mfa_login(user, sign_count=5), 401, "failed to validate assertion")
    row = credential_row(ctx, b64url_decode(mfa))
    assert row["flagged_at"] is not None and row["sign_count"] == 10
    assert "credential_flagged" in audit_kinds(ctx)
    begin = await backend.post("/mfa/login/initialize", {"user_id": user})
    assert mfa not in {item["id"] for item in begin.json()["publicKey"]["allowCredentials"]}


async def test_the_sdk_shape_of_mfa_calls(backend: Backend) -> None:
    """As `@teamhanko/passkeys-sdk` sends them: `apikey` and a JSON content type on every call,
    `icon` and `display_name` dropped when undefined."""
    user = uid()
    response = await backend.http.post(
        backend.base + "/mfa/registration/initialize",
        content=b'{"user_id":"' + user.encode() + b'","username":"ann","display_name":"Ann"}',
        headers=backend.headers,
    )
    assert response.json()["publicKey"]["user"]["displayName"] == "Ann"
    credential = backend.authenticator.create(response.json(), origin=backend.tenant.origin)
    token = await backend.post("/mfa/registration/finalize", credential)
    assert isinstance(token.json()["token"], str)
    assert token.headers["content-type"] == "application/json; charset=UTF-8"
