"""The OAuth/OIDC checks as an attacker would try them (OWASP ASVS 5.0 V10.4-V10.7, RFC 9700, OIDC Core
§3.1.2.1 and §3.1.2.6, RFC 7009, RFC 7662): each refused, and nothing issued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import update

from oidckit import (
    APP_REDIRECT,
    OTHER_SECRET,
    SECRET,
    SPA_REDIRECT,
    Pkce,
    auth_params,
    authorize,
    basic,
    code_for,
    exchange,
    query_of,
    signed_in,
)
from passgate.services.context import Context
from passgate.store.models import oidc_codes


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "redirect",
    [
        "https://app.localhost/callback/",
        "https://APP.localhost/callback",
        "https://app.localhost/callback?x=1",
        "https://app.localhost/callback#f",
        "https://app.localhost:443/callback",
        "https://evil.localhost/callback",
        "http://app.localhost/callback",
    ],
)
async def test_a_redirect_uri_not_registered_exactly_is_an_error_page(
    http: httpx.AsyncClient, redirect: str
) -> None:
    await signed_in(http)
    answer = await authorize(http, auth_params(redirect_uri=redirect, response_type="token"))
    assert answer.status_code == 400 and "location" not in answer.headers
    assert "invalid_request" in answer.text


async def test_an_unknown_client_or_missing_redirect_is_an_error_page(http: httpx.AsyncClient) -> None:
    await signed_in(http)
    unknown = await authorize(http, auth_params(client_id="nobody"))
    assert unknown.status_code in (400, 401) and "location" not in unknown.headers
    missing = await authorize(http, auth_params(redirect_uri=None))  # two URIs registered: REQUIRED
    assert missing.status_code == 400 and "location" not in missing.headers


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token", None])
async def test_only_the_code_flow(http: httpx.AsyncClient, response_type: str | None) -> None:
    await signed_in(http)
    params = auth_params(client_id="spa", redirect_uri=SPA_REDIRECT, response_type=response_type)
    query = query_of((await authorize(http, params)).headers["location"])
    assert query["error"] in ("unsupported_response_type", "invalid_request") and "code" not in query
    assert query["state"] == params["state"] and query["iss"] == "http://localhost:8000"


@pytest.mark.parametrize(
    "pkce",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge": "short"},
    ],
)
async def test_pkce_s256_is_required(http: httpx.AsyncClient, pkce: dict[str, str | None]) -> None:
    await signed_in(http)
    params = auth_params(client_id="spa", redirect_uri=SPA_REDIRECT, **pkce)
    query = query_of((await authorize(http, params)).headers["location"])
    assert query["error"] == "invalid_request" and "code" not in query


async def test_response_mode_other_than_query_is_refused(http: httpx.AsyncClient) -> None:
    await signed_in(http)
    params = auth_params(client_id="spa", redirect_uri=SPA_REDIRECT, response_mode="fragment")
    answer = await authorize(http, params)
    assert query_of(answer.headers["location"])["error"] == "invalid_request"


async def test_a_wrong_or_missing_verifier_fails_and_burns_the_code(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser, client_id="spa", redirect_uri=SPA_REDIRECT)
    wrong = await exchange(http, code, Pkce.new(), client_id="spa", redirect_uri=SPA_REDIRECT)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = await exchange(http, code, pkce, client_id="spa", redirect_uri=SPA_REDIRECT)
    assert again.json()["error"] == "invalid_grant"  # burnt by the failed attempt
    code, _, _ = await code_for(browser, client_id="spa", redirect_uri=SPA_REDIRECT)
    missing = await exchange(http, code, None, client_id="spa", redirect_uri=SPA_REDIRECT)
    assert missing.status_code == 400 and "access_token" not in missing.json()
    code, pkce, _ = await code_for(browser, client_id="spa", redirect_uri=SPA_REDIRECT)
    bad_abnf = await exchange(http, code, Pkce("a" * 42, ""), client_id="spa", redirect_uri=SPA_REDIRECT)
    assert bad_abnf.status_code == 400


async def test_pkce_downgrade_is_refused(http: httpx.AsyncClient, oidc_ctx: Context) -> None:
    """A verifier at the token endpoint for a code whose request had no challenge (RFC 9700 §4.8)."""
    browser = await signed_in(http)
    code, _, _ = await code_for(browser)
    oidc_ctx.db.transact(
        lambda c: c.execute(update(oidc_codes).values(code_challenge=None, code_challenge_method=None))
    )
    answer = await exchange(http, code, Pkce.new())
    assert answer.status_code == 400 and "access_token" not in answer.json()


async def test_a_replayed_code_revokes_what_it_issued(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    tokens = (await exchange(http, code, pkce)).json()
    assert (await http.get("/oidc/userinfo", headers=bearer(tokens["access_token"]))).status_code == 200
    replay = await exchange(http, code, pkce)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    revoked = await http.get("/oidc/userinfo", headers=bearer(tokens["access_token"]))
    assert revoked.status_code == 401 and 'error="invalid_token"' in revoked.headers["www-authenticate"]
    refresh = await http.post(
        "/oidc/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic("app", SECRET),
    )
    assert refresh.json()["error"] == "invalid_grant"


async def test_a_code_is_bound_to_client_and_redirect_uri(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    other_uri = await exchange(http, code, pkce, redirect_uri="https://app.localhost/other")
    assert other_uri.json()["error"] == "invalid_grant"
    code, pkce, _ = await code_for(browser)
    other_client = await exchange(http, code, pkce, client_id="other")
    assert other_client.json()["error"] == "invalid_grant"


async def test_an_expired_code_is_refused(http: httpx.AsyncClient, oidc_ctx: Context) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    oidc_ctx.db.transact(lambda c: c.execute(update(oidc_codes).values(expires_at=time.time() - 1)))
    assert (await exchange(http, code, pkce)).json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "auth",
    [
        {"headers": basic("app", "wrong" * 10)},
        {"headers": {}},  # a confidential client without its secret
        {"data": {"client_id": "app", "client_secret": SECRET}},  # registered for basic, not post
        {"headers": basic("other", OTHER_SECRET)},  # registered for post, not basic
        {"headers": basic("spa", "anything-at-all-" * 3)},  # a public client has no secret
    ],
)
async def test_wrong_client_authentication_is_invalid_client(http: httpx.AsyncClient, auth: dict) -> None:  # type: ignore[type-arg]
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": APP_REDIRECT,
        "code_verifier": pkce.verifier,
    }
    answer = await http.post(
        "/oidc/token", data={**body, **auth.get("data", {})}, headers=auth.get("headers", {})
    )
    assert answer.status_code in (400, 401) and answer.json()["error"] == "invalid_client"


async def test_refresh_rotates_and_a_reuse_revokes_the_grant(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, params = await code_for(browser)
    first = (await exchange(http, code, pkce)).json()

    async def refresh(token: str, **extra: str) -> httpx.Response:
        return await http.post(
            "/oidc/token",
            data={"grant_type": "refresh_token", "refresh_token": token, **extra},
            headers=basic("app", SECRET),
        )

    second = await refresh(first["refresh_token"], scope=params["scope"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"] and rotated["scope"] == params["scope"]
    assert "id_token" in rotated
    reuse = await refresh(first["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    # the whole family is gone: the rotated refresh token and the access tokens
    assert (await refresh(rotated["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await http.get("/oidc/userinfo", headers=bearer(rotated["access_token"]))).status_code == 401


async def test_refresh_is_bound_to_its_client(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    tokens = (await exchange(http, code, pkce)).json()
    stolen = await http.post(
        "/oidc/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "other",
            "client_secret": OTHER_SECRET,
        },
    )
    assert stolen.json()["error"] == "invalid_grant"


async def test_revocation_and_introspection(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    tokens = (await exchange(http, code, pkce)).json()
    seen = (
        await http.post(
            "/oidc/introspect", data={"token": tokens["access_token"]}, headers=basic("app", SECRET)
        )
    ).json()
    assert seen["active"] is True and seen["client_id"] == "app" and seen["scope"]
    foreign = await http.post(
        "/oidc/introspect",
        data={"token": tokens["access_token"], "client_id": "other", "client_secret": OTHER_SECRET},
    )
    assert foreign.json() == {"active": False}  # another client's token tells nothing
    unauthenticated = await http.post("/oidc/introspect", data={"token": tokens["access_token"]})
    assert unauthenticated.status_code in (400, 401)
    revoked = await http.post(
        "/oidc/revoke", data={"token": tokens["refresh_token"]}, headers=basic("app", SECRET)
    )
    assert revoked.status_code == 200
    after = (
        await http.post(
            "/oidc/introspect", data={"token": tokens["access_token"]}, headers=basic("app", SECRET)
        )
    ).json()
    assert after == {"active": False}  # revoking the refresh token revoked its grant


async def test_userinfo_refuses_bad_tokens(http: httpx.AsyncClient) -> None:
    for headers in ({}, bearer("nope"), {"Authorization": "Basic abc"}):
        answer = await http.get("/oidc/userinfo", headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")


async def test_an_id_token_hint_with_another_alg_or_key_is_refused(http: httpx.AsyncClient) -> None:
    """Algorithm confusion: an HS256 token keyed with the public RSA key, `alg: none`, and a token from a
    key that is not ours, are all refused as logout hints (no redirect)."""
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    real = (await exchange(http, code, pkce)).json()["id_token"]
    claims = jwt.decode(real, RSAKey.import_key((await http.get("/oidc/jwks")).json()["keys"][0])).claims
    public_pem = RSAKey.import_key((await http.get("/oidc/jwks")).json()["keys"][0]).as_pem(private=False)
    _, payload, _ = real.split(".")

    def segment(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    signed = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{payload}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(public_pem, signed, hashlib.sha256).digest()).decode().rstrip("=")
    hs = f"{signed.decode()}.{mac}"  # joserfc refuses to build this itself: an attacker would not
    foreign = jwt.encode({"alg": "RS256"}, claims, RSAKey.generate_key(2048))
    none = f"{segment({'alg': 'none'})}.{payload}."
    for hint in (hs, foreign, none):
        answer = await http.get(
            "/oidc/logout",
            params={"id_token_hint": hint, "post_logout_redirect_uri": "https://app.localhost/bye"},
        )
        assert answer.status_code == 400 and "location" not in answer.headers, hint
    assert (await browser.me()).status_code == 200  # still signed in


async def test_logout_with_a_hint_ends_the_session_and_redirects(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    tokens = (await exchange(http, code, pkce)).json()
    answer = await http.get(
        "/oidc/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://app.localhost/bye",
            "state": "s1",
        },
    )
    assert answer.status_code == 302 and answer.headers["location"] == "https://app.localhost/bye?state=s1"
    assert (await browser.me()).status_code == 401
    assert (await http.get("/oidc/userinfo", headers=bearer(tokens["access_token"]))).status_code == 401


async def test_logout_without_a_hint_asks_first_and_never_redirects_elsewhere(
    http: httpx.AsyncClient,
) -> None:
    browser = await signed_in(http)
    asked = await http.get("/oidc/logout", params={"post_logout_redirect_uri": "https://evil.localhost/"})
    assert asked.status_code == 200 and "logout-form" in asked.text
    assert (await browser.me()).status_code == 200  # a link alone signs nobody out
    confirmed = await http.post(
        "/oidc/logout", data={"post_logout_redirect_uri": "https://evil.localhost/", "confirm": "yes"}
    )
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/signin?signed_out=1"
    assert (await browser.me()).status_code == 401


async def test_an_unregistered_post_logout_uri_is_not_followed(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    tokens = (await exchange(http, code, pkce)).json()
    answer = await http.get(
        "/oidc/logout",
        params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.localhost/"},
    )
    assert answer.headers["location"] == "/signin?signed_out=1"


async def test_revoking_an_app_on_the_account_forgets_consent_and_tokens(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser)
    tokens = (await exchange(http, code, pkce)).json()
    parts = await http.get("/account/parts")
    assert 'data-client-id="app"' in parts.text and "The App" in parts.text  # listed on the account page
    assert (await browser.post("/auth/apps/revoke", {"client_id": "app"})).status_code == 200
    assert 'data-client-id="app"' not in (await http.get("/account/parts")).text
    assert (await http.get("/oidc/userinfo", headers=bearer(tokens["access_token"]))).status_code == 401
    page = await authorize(http, auth_params())
    assert "consent-form" in page.text  # asks again
    assert (await browser.post("/auth/apps/revoke", {"client_id": "app"})).status_code == 404


async def test_a_disabled_user_gets_nothing_more(http: httpx.AsyncClient, oidc_ctx: Context) -> None:
    from passgate.store.models import users

    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser, client_id="spa", redirect_uri=SPA_REDIRECT)
    user_id = (await browser.me()).json()["user_id"]
    oidc_ctx.db.transact(
        lambda c: c.execute(update(users).where(users.c.id == user_id).values(disabled=True))
    )
    answer = await exchange(http, code, pkce, client_id="spa", redirect_uri=SPA_REDIRECT)
    assert answer.json()["error"] == "invalid_grant"


async def test_cors_only_for_client_origins(http: httpx.AsyncClient) -> None:
    preflight = await http.options(
        "/oidc/token", headers={"origin": "http://localhost:8001", "access-control-request-method": "POST"}
    )
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:8001"
    foreign = await http.options(
        "/oidc/token", headers={"origin": "https://evil.localhost", "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in foreign.headers
    document = await http.get(
        "/.well-known/openid-configuration", headers={"origin": "https://app.localhost"}
    )
    assert document.headers["access-control-allow-origin"] == "https://app.localhost"
    # a browser app's token request from its own origin is not refused as cross-site
    token = await http.post(
        "/oidc/token", data={"grant_type": "authorization_code"}, headers={"origin": "http://localhost:8001"}
    )
    assert token.status_code in (400, 401) and token.json()["error"] != "cross_site_request"
    assert token.headers["access-control-allow-origin"] == "http://localhost:8001"


async def test_cors_preflight_allows_swagger_uis_token_request(http: httpx.AsyncClient) -> None:
    """Swagger UI's Authorize button posts the code with `X-Requested-With: XMLHttpRequest`; a header the
    preflight answer does not list makes the browser refuse the request (Fetch Standard, CORS-preflight
    fetch)."""
    preflight = await http.options(
        "/oidc/token",
        headers={
            "origin": "http://localhost:8001",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-requested-with",
        },
    )
    allowed = {name.strip() for name in preflight.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-requested-with"} <= allowed
