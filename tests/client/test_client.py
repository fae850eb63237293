"""`passgate.client` against a real `passgate serve`: every endpoint through the sync and the async
client, with the software authenticator as the users' browser; token verification through the JWKS
(refusals, caching, key rotation); the API's errors as exceptions; and no server code imported."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from clientkit import BROWSER_ORIGIN, RemoteTenant, add_tenant, passgate_cli
from passgate.client import (
    ApiError,
    ApiUnavailable,
    AsyncPasskeyClient,
    AuditLog,
    PasskeyClient,
    TokenInvalid,
)
from passgate.client import tokens as client_tokens
from servers import free_port
from softkey import SoftAuthenticator


def sync_client(tenant: RemoteTenant, **options: object) -> PasskeyClient:
    return PasskeyClient(tenant.base_url, tenant.id, tenant.api_key, audience="localhost", **options)  # type: ignore[arg-type]


def test_the_client_imports_nothing_of_the_server() -> None:
    probe = (
        "import sys, passgate.client, passgate.client.fastapi, passgate.client.flask\n"
        "print(sorted(m for m in sys.modules if m.startswith('passgate')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = eval(done.stdout)  # a list literal printed above
    assert "passgate.client.flask" in loaded
    assert [name for name in loaded if name != "passgate" and not name.startswith("passgate.client")] == []


def test_sync_client_runs_every_endpoint(remote_tenant: RemoteTenant) -> None:
    laptop, browser, user = SoftAuthenticator(), SoftAuthenticator(), str(uuid.uuid4())
    with sync_client(remote_tenant) as client:
        tokens = []
        for authenticator in (laptop, browser):
            options = client.registration_initialize(user, "ann@example.com", display_name="Ann")
            assert options["publicKey"]["user"]["displayName"] == "Ann"
            credential = authenticator.create(options, origin=BROWSER_ORIGIN)
            tokens.append(client.registration_finalize(credential))
        registered = client.verify_token(tokens[1], max_age=60, require_uv=True)
        assert registered.subject == user and registered.audience == ("localhost",)
        assert registered.user_verified is True and registered.transaction_id is None

        for named in (None, user):
            assertion = browser.get(client.login_initialize(named), origin=BROWSER_ORIGIN)
            assert client.verify_token(client.login_finalize(assertion)).subject == user

        options = client.transaction_initialize(user, f"tx-{uuid.uuid4()}", {"amount": 5})
        token = client.transaction_finalize(browser.get(options, origin=BROWSER_ORIGIN))
        trans = client.verify_token(token).transaction_id
        assert trans and client.verify_token(token, transaction_id=trans, require_uv=True).subject == user
        with pytest.raises(TokenInvalid, match="another transaction"):
            client.verify_token(token, transaction_id="tx-other")

        page = client.list_credentials(user, per_page=1, order="asc")
        assert page.total == 2 and len(page.items) == 1 and page.pages == {"first": 1, "last": 2, "next": 2}
        first = page.items[0]
        assert first.user_id == user and first.name.startswith("cred-")
        client.rename_credential(first.id, "Laptop")
        assert client.get_credential(first.id).name == "Laptop"
        assert client.list_credentials(page=1, per_page=100).total >= 2  # tenant-wide
        client.delete_credential(first.id)
        with pytest.raises(ApiError) as missing:
            client.get_credential(first.id)
        assert (missing.value.status, missing.value.title) == (
            404,
            f"credential with id '{first.id}' not found",
        )
        assert [key["alg"] for key in client.jwks()["keys"]] == ["RS256"]


async def test_async_client_runs_the_ceremonies(remote_tenant: RemoteTenant) -> None:
    browser, user = SoftAuthenticator(), str(uuid.uuid4())
    async with AsyncPasskeyClient(
        remote_tenant.base_url, remote_tenant.id, remote_tenant.api_key, audience="localhost"
    ) as client:
        options = await client.registration_initialize(user, "bob")
        token = await client.registration_finalize(browser.create(options, origin=BROWSER_ORIGIN))
        cred = (await client.verify_token(token)).credential_id
        assertion = browser.get(await client.login_initialize(), origin=BROWSER_ORIGIN)
        claims = await client.verify_token(
            await client.login_finalize(assertion), max_age=30, require_uv=True
        )
        assert (claims.subject, claims.credential_id) == (user, cred)
        options = await client.transaction_initialize(user, f"tx-{uuid.uuid4()}", {"to": "carol"})
        token = await client.transaction_finalize(browser.get(options, origin=BROWSER_ORIGIN))
        assert (await client.verify_token(token)).transaction_id
        (only,) = (await client.list_credentials(user)).items
        await client.rename_credential(only.id, "Phone")
        assert (await client.get_credential(only.id)).name == "Phone"
        await client.delete_credential(only.id)
        assert (await client.list_credentials(user)).total == 0
        assert (await client.jwks())["keys"]


def test_sync_client_runs_mfa_and_reads_the_audit_log(remote_tenant: RemoteTenant) -> None:
    tenant = add_tenant(remote_tenant.server)  # a log of its own: tenant_added, api_key_added
    laptop, security_key, user = SoftAuthenticator(), SoftAuthenticator(), str(uuid.uuid4())
    time.sleep(0.01)  # times are kept to the microsecond: everything below happens after `started`
    started = datetime.now(UTC)
    with sync_client(tenant) as client:
        passkey = client.registration_finalize(
            laptop.create(client.registration_initialize(user, "ann"), origin=BROWSER_ORIGIN)
        )
        options = client.mfa_registration_initialize(user, "ann", display_name="Ann")
        assert options["publicKey"]["authenticatorSelection"]["residentKey"] == "discouraged"
        registered = client.verify_token(
            client.mfa_registration_finalize(security_key.create(options, origin=BROWSER_ORIGIN))
        )
        options = client.mfa_login_initialize(user)
        assert len(options["publicKey"]["allowCredentials"]) == 2
        assertion = security_key.get(options, origin=BROWSER_ORIGIN, user_handle=None, uv=False)
        claims = client.verify_token(client.mfa_login_finalize(assertion))
        assert (claims.subject, claims.credential_id, claims.user_verified) == (
            user,
            registered.credential_id,
            False,
        )
        with pytest.raises(TokenInvalid, match="did not verify the user"):
            client.verify_token(client.mfa_login_finalize(_mfa(client, security_key, user)), require_uv=True)
        assert client.get_credential(registered.credential_id).is_mfa
        assert not client.get_credential(client.verify_token(passkey).credential_id).is_mfa
        with pytest.raises(ApiError) as refused:  # an MFA credential is no passkey
            login = client.login_initialize()
            client.login_finalize(security_key.get(login, origin=BROWSER_ORIGIN))
        assert (refused.value.status, refused.value.title) == (
            400,
            "MFA credentials are not usable for normal login",
        )

        page = client.list_audit_logs(
            per_page=3, start_time=started, types=["mfa_authentication_final_succeeded"]
        )
        assert page.total == 2 and page.pages == {"first": 1, "last": 1}
        event = page.items[0]
        assert isinstance(event, AuditLog) and event.type == "mfa_authentication_final_succeeded"
        assert event.actor_user_id == user and event.tenant_id == tenant.id and event.meta_source_ip
        everything = client.list_audit_logs(per_page=2, q=user)
        assert everything.total > 2 and everything.pages["next"] == 2 and len(everything.items) == 2
        failed = client.list_audit_logs(types=["webauthn_authentication_final_failed"], actor_user_id=user)
        assert [item.error for item in failed.items] == ["MFA credentials are not usable for normal login"]
        assert client.list_audit_logs(end_time=started).total == 2  # tenant_added, api_key_added
        with pytest.raises(ApiError) as bad:
            client.list_audit_logs(start_time="yesterday")
        assert (bad.value.status, bad.value.title) == (400, "unable to list audit logs")


def _mfa(client: PasskeyClient, key: SoftAuthenticator, user: str) -> dict[str, object]:
    return key.get(client.mfa_login_initialize(user), origin=BROWSER_ORIGIN, uv=False)


async def test_async_client_runs_mfa_and_reads_the_audit_log(remote_tenant: RemoteTenant) -> None:
    security_key, user = SoftAuthenticator(), str(uuid.uuid4())
    async with AsyncPasskeyClient(
        remote_tenant.base_url, remote_tenant.id, remote_tenant.api_key, audience="localhost"
    ) as client:
        options = await client.mfa_registration_initialize(user, "bob")
        token = await client.mfa_registration_finalize(security_key.create(options, origin=BROWSER_ORIGIN))
        cred = (await client.verify_token(token)).credential_id
        assertion = security_key.get(await client.mfa_login_initialize(user), origin=BROWSER_ORIGIN)
        claims = await client.verify_token(await client.mfa_login_finalize(assertion))
        assert (claims.subject, claims.credential_id) == (user, cred)
        page = await client.list_audit_logs(actor_user_id=user, types=("mfa_registration_final_succeeded",))
        assert [item.actor_user_id for item in page.items] == [user] and page.total == 1
        with pytest.raises(ApiError, match="404 user not found"):
            await client.mfa_login_initialize(str(uuid.uuid4()))


def test_errors_carry_the_apis_title_details_and_status(remote_tenant: RemoteTenant) -> None:
    wrong_key = PasskeyClient(remote_tenant.base_url, remote_tenant.id, "wrong-key-" * 9)
    with wrong_key, pytest.raises(ApiError) as refused:
        wrong_key.registration_initialize("u", "u")
    assert refused.value.problem() == {
        "title": "The api key is invalid",
        "details": "api keys needs to be an apiKey Header and 32 byte long",
        "status": 401,
    }
    with sync_client(remote_tenant) as client:
        with pytest.raises(ApiError) as invalid:
            client.registration_initialize("u", "")
        assert (invalid.value.status, invalid.value.details) == (400, "username is a required field")
        with pytest.raises(ApiError, match="409 transaction already exists"):
            user = _registered(client)
            client.transaction_initialize(user, "tx-once-" + user, 1)
            client.transaction_initialize(user, "tx-once-" + user, 1)
    nowhere = PasskeyClient(f"http://127.0.0.1:{free_port()}/passkeys", remote_tenant.id, "k")
    with nowhere, pytest.raises(ApiUnavailable) as down:
        nowhere.jwks()
    assert down.value.status == 502


def test_verification_refuses_foreign_forged_and_stale_tokens(remote_tenant: RemoteTenant) -> None:
    other = add_tenant(remote_tenant.server)
    with sync_client(remote_tenant) as client, sync_client(other) as other_client:
        token = client.registration_finalize(
            SoftAuthenticator().create(client.registration_initialize("u1", "u1"), origin=BROWSER_ORIGIN)
        )
        foreign = other_client.registration_finalize(
            SoftAuthenticator().create(
                other_client.registration_initialize("u1", "u1"), origin=BROWSER_ORIGIN
            )
        )
        with pytest.raises(TokenInvalid, match="key the tenant does not publish"):
            client.verify_token(foreign)  # another tenant's key (same RP ID, same user id)
        head, body, signature = token.split(".")
        forged = ".".join((head, body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB"), signature))
        for bad in (forged, "not-a-jwt", token + "x"):
            with pytest.raises(TokenInvalid) as refused:
                client.verify_token(bad)
            assert refused.value.status == 401
        assert client.keys.keys is not None
        later = time.time() + 120
        with pytest.raises(TokenInvalid, match="older than 60 s"):
            client_tokens.verify(token, client.keys.keys, tenant_id=remote_tenant.id, max_age=60, now=later)
        with pytest.raises(TokenInvalid, match="expired"):
            client_tokens.verify(token, client.keys.keys, tenant_id=remote_tenant.id, now=later + 300)
        with pytest.raises(TokenInvalid, match="another tenant"):
            client_tokens.verify(token, client.keys.keys, tenant_id=other.id)
    with (
        PasskeyClient(remote_tenant.base_url, remote_tenant.id, remote_tenant.api_key, audience="x") as wrong,
        pytest.raises(TokenInvalid, match="another audience"),
    ):
        wrong.verify_token(token)


def test_jwks_is_cached_and_fetched_again_after_a_rotation(remote_tenant: RemoteTenant) -> None:
    tenant = add_tenant(remote_tenant.server)
    fetches: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: fetches.append(request.url.path)]})
    with sync_client(tenant, http=http, jwks_cooldown=0.5) as client:
        user = _registered(client)
        first = client.login_finalize(_assertion(client, user))
        fetches.clear()
        client.verify_token(first)
        client.verify_token(first)
        assert _jwks(fetches) == 1  # cached
        passgate_cli(tenant.server, "tenant", "rotate-key", tenant.id)
        time.sleep(0.5)
        rotated = client.login_finalize(_assertion(client, user))
        assert client.verify_token(rotated).subject == user  # unknown kid: fetched again
        assert client.verify_token(first).subject == user  # the old key is still published
        assert _jwks(fetches) == 2
        stranger = jwt.encode({"alg": "RS256", "kid": "made-up"}, {"sub": user}, RSAKey.generate_key(2048))
        for _ in range(5):
            with pytest.raises(TokenInvalid, match="key the tenant does not publish"):
                client.verify_token(stranger)
        assert _jwks(fetches) <= 3  # made-up key ids: at most one more fetch within the cooldown


_browsers: dict[str, SoftAuthenticator] = {}


def _registered(client: PasskeyClient) -> str:
    user, browser = str(uuid.uuid4()), SoftAuthenticator()
    client.registration_finalize(
        browser.create(client.registration_initialize(user, user), origin=BROWSER_ORIGIN)
    )
    _browsers[user] = browser
    return user


def _assertion(client: PasskeyClient, user: str) -> dict[str, object]:
    return _browsers[user].get(client.login_initialize(user), origin=BROWSER_ORIGIN)


def _jwks(paths: list[str]) -> int:
    return sum(path.endswith("/.well-known/jwks.json") for path in paths)
