"""The code flow's MUSTs, over HTTP as a browser and a relying party would run them (OIDC Core §3.1,
RFC 6749 §4.1, RFC 7636, RFC 9207, RFC 9700)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from oidckit import (
    APP_REDIRECT,
    SPA_REDIRECT,
    Pkce,
    auth_params,
    authorize,
    code_for,
    consent,
    exchange,
    query_of,
    signed_in,
)
from passgate.oidc.claims import ACR_PASSKEY_UV
from passgate.services.context import Context

ISSUER = "http://localhost:8000"


async def id_claims(http: httpx.AsyncClient, id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set((await http.get("/oidc/jwks")).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256"])
    assert token.header["kid"] in {key["kid"] for key in (await http.get("/oidc/jwks")).json()["keys"]}
    return dict(token.claims)


async def test_discovery_lists_only_what_is_supported(http: httpx.AsyncClient) -> None:
    from authlib.oidc.discovery import OpenIDProviderMetadata

    answer = await http.get("/.well-known/openid-configuration")
    document = answer.json()
    assert document["issuer"] == ISSUER
    OpenIDProviderMetadata(document).validate()
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert set(document["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert (
        "implicit" not in document["grant_types_supported"]
        and "password" not in document["grant_types_supported"]
    )
    keys = (await http.get("/oidc/jwks")).json()["keys"]
    assert {key["kty"] for key in keys} == {"RSA", "EC"} and all(key.get("kid") for key in keys)
    assert not any("d" in key or "p" in key for key in keys)  # public parts only


async def test_the_happy_flow_with_consent(http: httpx.AsyncClient, oidc_ctx: Context) -> None:
    browser = await signed_in(http)
    me = (await browser.me()).json()
    params = auth_params()
    page = await authorize(http, params)
    assert page.status_code == 200 and "The App" in page.text  # not trusted: asks first
    assert "form-action 'self' https://app.localhost" in page.headers["content-security-policy"]
    answer = await consent(http, page)
    assert answer.status_code == 303  # after a POST (RFC 9700 §4.12)
    query = query_of(answer.headers["location"])
    assert answer.headers["location"].startswith(APP_REDIRECT + "?")
    assert query["state"] == params["state"] and query["iss"] == ISSUER
    tokens = await exchange(
        http, query["code"], Pkce(params["code_verifier"], "") if "code_verifier" in params else None
    )
    assert tokens.status_code == 400  # no verifier sent: PKCE was asked for
    # consent is remembered: the next request goes straight back with a code
    code, pkce, params = await code_for(browser)
    tokens = await exchange(http, code, pkce)
    assert tokens.status_code == 200
    assert tokens.headers["cache-control"] == "no-store"
    body = tokens.json()
    claims = await id_claims(http, body["id_token"])
    assert claims["iss"] == ISSUER and claims["aud"] == "app" and claims["azp"] == "app"
    assert claims["sub"] == me["user_id"] and claims["nonce"] == params["nonce"]
    assert claims["acr"] == ACR_PASSKEY_UV and "user" in claims["amr"] and claims["amr"][0] in ("hwk", "swk")
    assert abs(claims["auth_time"] - me["auth_time"]) <= 1 if isinstance(me.get("auth_time"), int) else True
    assert claims["exp"] > claims["iat"] and "at_hash" in claims
    info = await http.get("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.json()["sub"] == me["user_id"] and info.json()["preferred_username"] == me["user_name"]
    posted = await http.post("/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert posted.status_code == 200


async def test_es256_per_client_and_client_secret_post(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(
        browser, client_id="other", redirect_uri="https://other.localhost/callback"
    )
    tokens = await exchange(
        http, code, pkce, client_id="other", redirect_uri="https://other.localhost/callback"
    )
    assert tokens.status_code == 200, tokens.text
    header = jwt.decode(
        tokens.json()["id_token"], KeySet.import_key_set((await http.get("/oidc/jwks")).json())
    ).header
    assert header["alg"] == "ES256"


async def test_no_session_goes_to_sign_in_and_back(http: httpx.AsyncClient) -> None:
    params = auth_params(client_id="spa", redirect_uri=SPA_REDIRECT)
    answer = await authorize(http, params)
    assert answer.status_code == 303 and answer.headers["location"].startswith(
        "/signin?return_to=%2Foidc%2Fauthorize"
    )
    back = query_of(answer.headers["location"])["return_to"]
    browser = await signed_in(http)
    answer = await browser.http.get(back)
    assert answer.status_code == 302 and "code=" in answer.headers["location"]


async def test_prompt_none_without_a_session_is_login_required(http: httpx.AsyncClient) -> None:
    params = auth_params(client_id="spa", redirect_uri=SPA_REDIRECT, prompt="none")
    query = query_of((await authorize(http, params)).headers["location"])
    assert query == {"error": "login_required", "state": params["state"], "iss": ISSUER} | (
        {"error_description": query["error_description"]} if "error_description" in query else {}
    )


async def test_prompt_none_needing_consent_is_consent_required(http: httpx.AsyncClient) -> None:
    await signed_in(http)
    query = query_of((await authorize(http, auth_params(prompt="none"))).headers["location"])
    assert query["error"] == "consent_required" and query["iss"] == ISSUER


async def test_consent_denied_is_access_denied(http: httpx.AsyncClient) -> None:
    await signed_in(http)
    page = await authorize(http, auth_params())
    query = query_of((await consent(http, page, "deny")).headers["location"])
    assert query["error"] == "access_denied"


async def test_consent_needs_the_page_token(http: httpx.AsyncClient) -> None:
    await signed_in(http)
    params = auth_params()
    forged = await http.post("/oidc/consent", data={**params, "consent": "allow", "consent_token": "0" * 32})
    assert forged.status_code == 200 and "consent-form" in forged.text  # asked again, nothing issued


@pytest.mark.parametrize("asks", [{"prompt": "login"}, {"max_age": "0"}, {"acr_values": ACR_PASSKEY_UV}])
async def test_a_re_check_is_real_and_moves_auth_time(
    http: httpx.AsyncClient, oidc_ctx: Context, asks: dict[str, str]
) -> None:
    browser = await signed_in(http)
    if "acr_values" in asks:  # make the session's check older than the step-up window
        from sqlalchemy import update

        from passgate.store.models import sessions

        oidc_ctx.db.transact(
            lambda c: c.execute(update(sessions).values(auth_time=sessions.c.auth_time - 3600))
        )
    pkce = Pkce.new()
    params = auth_params(client_id="spa", redirect_uri=SPA_REDIRECT, pkce=pkce, **asks)
    answer = await authorize(http, params)
    assert answer.status_code == 303 and "reauth=1" in answer.headers["location"], answer.text
    back = query_of(answer.headers["location"])["return_to"]
    assert (await http.get(back)).status_code == 303  # coming back without checking asks again
    if "prompt" not in asks:
        silent = await authorize(http, {**params, "prompt": "none"})
        assert query_of(silent.headers["location"])["error"] == "login_required"
    forged = back.replace("passgate_check=", "passgate_check=1")
    assert (await http.get(forged)).status_code == 303  # a marker is signed
    started = time.time()
    user_name = (await browser.me()).json()["user_name"]
    assert (await browser.login(user_name)).status_code == 200  # the re-check, with user verification
    answer = await http.get(back)
    assert answer.status_code == 302, answer.text
    code = query_of(answer.headers["location"])["code"]
    tokens = await exchange(http, code, pkce, client_id="spa", redirect_uri=SPA_REDIRECT)
    claims = await id_claims(http, tokens.json()["id_token"])
    assert claims["auth_time"] >= int(started) and claims["acr"] == ACR_PASSKEY_UV


async def test_max_age_within_the_last_check_needs_nothing(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(browser, client_id="spa", redirect_uri=SPA_REDIRECT, max_age="10000")
    tokens = await exchange(http, code, pkce, client_id="spa", redirect_uri=SPA_REDIRECT)
    assert tokens.status_code == 200 and "auth_time" in await id_claims(http, tokens.json()["id_token"])


async def test_unknown_parameters_and_display_are_ignored(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    code, pkce, _ = await code_for(
        browser, client_id="spa", redirect_uri=SPA_REDIRECT, extra="foobar", display="popup"
    )
    assert (await exchange(http, code, pkce, client_id="spa", redirect_uri=SPA_REDIRECT)).status_code == 200


async def test_loopback_redirect_on_any_port(http: httpx.AsyncClient) -> None:
    browser = await signed_in(http)
    redirect = "http://127.0.0.1:51234/native"
    code, pkce, _ = await code_for(browser, client_id="spa", redirect_uri=redirect)
    assert (await exchange(http, code, pkce, client_id="spa", redirect_uri=redirect)).status_code == 200
