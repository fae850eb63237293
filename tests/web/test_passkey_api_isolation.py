"""Tenant isolation, endpoint by endpoint: backend B, with its own valid key, names backend A's tenant,
users, credentials and transactions, or replays A's ceremonies into its own tenant. Each attempt is
refused exactly as an unknown id would be, and changes nothing of A's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from joserfc.errors import JoseError

from apikit import Backend, Tenant, backend_client, make_tenant, problem
from passgate.services.context import Context
from seckit import challenge_stored, credential_row, module_app
from softkey import SoftAuthenticator, b64url_decode

ctx, app = module_app("passkeyapi_isolation", both_databases=True)


@pytest.fixture(scope="module")
def tenants(ctx: Context) -> tuple[Tenant, Tenant]:
    return make_tenant(ctx), make_tenant(ctx)


@pytest.fixture
async def pair(app: Any, tenants: tuple[Tenant, Tenant]) -> AsyncIterator[tuple[Backend, Backend]]:
    async with backend_client(app) as http:
        yield Backend(http, tenants[0]), Backend(http, tenants[1])


def _with_key_of(victim: Backend, attacker: Backend) -> Backend:
    """The attacker's key, sent to the victim's tenant."""
    return Backend(victim.http, Tenant(victim.tenant.id, attacker.tenant.api_key), attacker.authenticator)


async def test_another_tenants_key_opens_nothing(pair: tuple[Backend, Backend], ctx: Context) -> None:
    a, b = pair
    intruder = _with_key_of(a, b)
    user = str(uuid.uuid4())
    cred = (await a.claims(await a.register(user)))["cred"]
    calls = [
        intruder.post("/registration/initialize", {"user_id": user, "username": "x"}),
        intruder.post("/login/initialize", {"user_id": user}),
        intruder.post(
            "/transaction/initialize", {"user_id": user, "transaction_id": "t", "transaction_data": 1}
        ),
        intruder.get("/credentials"),
        intruder.get("/credentials", user_id=user),
        intruder.get(f"/credentials/{cred}"),
        intruder.http.patch(
            intruder.base + f"/credentials/{cred}", json={"name": "x"}, headers=intruder.headers
        ),
        intruder.http.delete(intruder.base + f"/credentials/{cred}", headers=intruder.headers),
        intruder.post("/mfa/registration/initialize", {"user_id": user, "username": "x"}),
        intruder.post("/mfa/login/initialize", {"user_id": user}),
        intruder.get("/audit_logs"),
        intruder.get("/audit_logs", actor_user_id=user),
    ]
    for call in calls:
        problem(await call, 401, "The api key is invalid")
    for path, sign in (
        ("/mfa/registration", SoftAuthenticator().create),
        ("/mfa/login", a.authenticator.get),
    ):  # a response to A's own ceremony, sent with B's key: refused, and A's challenge left unused
        begin = await a.post(f"{path}/initialize", {"user_id": user, "username": "x"})
        response = sign(begin.json(), origin=a.tenant.origin)
        problem(await intruder.post(f"{path}/finalize", response), 401, "The api key is invalid")
        assert challenge_stored(ctx, begin.json())
    assert (await a.get(f"/credentials/{cred}")).status_code == 200


async def test_a_transaction_finishes_with_its_own_tenants_key_only(
    pair: tuple[Backend, Backend], ctx: Context
) -> None:
    """The finalize reads the tenant, the key's match and the signing key in one statement: another
    tenant's key, or none, is refused before the ceremony, whose challenge stays unused."""
    a, b = pair
    user, transaction_id = str(uuid.uuid4()), str(uuid.uuid4())
    await a.claims(await a.register(user))
    begin = await a.post(
        "/transaction/initialize", {"user_id": user, "transaction_id": transaction_id, "transaction_data": 1}
    )
    signed = a.authenticator.get(begin.json(), origin=a.tenant.origin)
    for sender in (_with_key_of(a, b), Backend(a.http, Tenant(a.tenant.id, " "))):
        problem(await sender.post("/transaction/finalize", signed), 401, "The api key is invalid")
        assert challenge_stored(ctx, begin.json())
    assert (await a.claims(await a.post("/transaction/finalize", signed)))["trans"] == transaction_id


async def test_another_tenants_credentials_are_unknown(pair: tuple[Backend, Backend], ctx: Context) -> None:
    a, b = pair
    user = str(uuid.uuid4())
    cred = (await a.claims(await a.register(user)))["cred"]
    before = credential_row(ctx, b64url_decode(cred))
    unknown = "AAAAAAAAAAAAAAAAAAAAAA"
    for credential_id in (cred, unknown):
        title = f"credential with id '{credential_id}' not found"
        problem(await b.get(f"/credentials/{credential_id}"), 404, title)
        url = b.base + f"/credentials/{credential_id}"
        problem(await b.http.patch(url, json={"name": "x"}, headers=b.headers), 404, title)
        problem(await b.http.delete(url, headers=b.headers), 404, title)
    assert (await b.get("/credentials", user_id=user)).json() == []
    assert cred not in {item["id"] for item in (await b.get("/credentials")).json()}
    assert credential_row(ctx, b64url_decode(cred)) == before


async def test_another_tenants_users_are_unknown(pair: tuple[Backend, Backend]) -> None:
    a, b = pair
    user = str(uuid.uuid4())
    await a.claims(await a.register(user))
    problem(await b.post("/login/initialize", {"user_id": user}), 404, "user not found")
    body = {"user_id": user, "transaction_id": str(uuid.uuid4()), "transaction_data": 1}
    problem(await b.post("/transaction/initialize", body), 404, "unable to find user")


async def test_a_credential_of_one_tenant_cannot_sign_in_to_another(pair: tuple[Backend, Backend]) -> None:
    """Same RP ID and origin in both tenants: only the tenant that registered the credential knows it."""
    a, b = pair
    user = str(uuid.uuid4())
    await a.claims(await a.register(user))
    begin = await b.post("/login/initialize")
    assertion = a.authenticator.get(begin.json(), origin=b.tenant.origin)
    problem(await b.post("/login/finalize", assertion), 401, "failed to validate assertion")


async def test_a_ceremony_begun_in_one_tenant_cannot_finish_in_another(pair: tuple[Backend, Backend]) -> None:
    a, b = pair
    user = str(uuid.uuid4())
    begin = await a.post("/registration/initialize", {"user_id": user, "username": "x"})
    credential = SoftAuthenticator().create(begin.json(), origin=a.tenant.origin)
    problem(
        await b.post("/registration/finalize", credential),
        400,
        "received challenge does not match with any stored one",
    )
    # the response was offered to the wrong tenant: its challenge is burnt (consumed first, §13.5.3)
    problem(
        await a.post("/registration/finalize", credential),
        400,
        "received challenge does not match with any stored one",
    )
    await a.claims(await a.register(user))
    login = await a.post("/login/initialize")
    assertion = a.authenticator.get(login.json(), origin=a.tenant.origin)
    problem(await b.post("/login/finalize", assertion), 401, "failed to get session data")
    transaction = await a.post(
        "/transaction/initialize", {"user_id": user, "transaction_id": "t-1", "transaction_data": 1}
    )
    # B may use the same transaction id: ids are per tenant
    await b.claims(await b.register(user))
    same_id = await b.post(
        "/transaction/initialize", {"user_id": user, "transaction_id": "t-1", "transaction_data": 1}
    )
    assert same_id.status_code == 200
    signed = a.authenticator.get(transaction.json(), origin=a.tenant.origin)
    problem(await b.post("/transaction/finalize", signed), 401, "failed to get session data")


async def test_a_token_of_one_tenant_does_not_verify_with_anothers_jwks(
    pair: tuple[Backend, Backend],
) -> None:
    a, b = pair
    response = await a.register(str(uuid.uuid4()))
    with pytest.raises(JoseError):  # no key of B's set has A's kid
        await b.claims(response)


async def test_mfa_of_one_tenant_is_unknown_in_another(pair: tuple[Backend, Backend]) -> None:
    a, b = pair
    user, key = str(uuid.uuid4()), Backend(a.http, a.tenant, SoftAuthenticator())
    await key.claims(await key.mfa_register(user))
    problem(await b.post("/mfa/login/initialize", {"user_id": user}), 404, "user not found")
    begin = await a.post("/mfa/registration/initialize", {"user_id": user, "username": "x"})
    created = SoftAuthenticator().create(begin.json(), origin=a.tenant.origin)
    problem(
        await b.post("/mfa/registration/finalize", created),
        400,
        "received challenge does not match with any stored one",
    )
    begin = await a.post("/mfa/login/initialize", {"user_id": user})
    signed = key.authenticator.get(begin.json(), origin=a.tenant.origin)
    problem(await b.post("/mfa/login/finalize", signed), 401, "failed to get session data")
    # B's own MFA ceremony for a user of the same id cannot be finished with A's security key
    await b.claims(await b.register(user))
    begin = await b.post("/mfa/login/initialize", {"user_id": user})
    foreign = key.authenticator.get(
        begin.json(), origin=b.tenant.origin, credential_id=key.authenticator.last_credential.credential_id
    )
    problem(await b.post("/mfa/login/finalize", foreign), 401, "failed to validate assertion")
    assert all(not item["is_mfa"] for item in (await b.get("/credentials")).json())


async def test_the_audit_log_is_the_tenants_own(pair: tuple[Backend, Backend]) -> None:
    a, b = pair
    user = f"only-in-a-{uuid.uuid4()}"
    await a.claims(await a.register(user))
    mine = (await a.get("/audit_logs", actor_user_id=user)).json()
    assert len(mine) == 3 and {item["tenant_id"] for item in mine} == {a.tenant.id}
    for query in ({"actor_user_id": user}, {"q": user}, {"type": "credential_added"}, {"per_page": 100}):
        listed = await b.get("/audit_logs", **query)
        assert listed.status_code == 200
        assert all(item["tenant_id"] == b.tenant.id for item in listed.json())
        assert user not in listed.text
    total = int((await b.get("/audit_logs")).headers["x-total-count"])
    assert total == len((await b.get("/audit_logs", per_page=100)).json())
