"""Helpers for the OpenID provider tests: registered clients, a signed-in browser, the code flow step by
step (authorize → code → token) as a relying party would run it."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from flows import ORIGIN, Passkeys
from passgate.oidc.clients import hash_secret

SECRET = "app-secret-" + "x" * 40
OTHER_SECRET = "other-secret-" + "y" * 40
APP_REDIRECT = "https://app.localhost/callback"
SPA_REDIRECT = "http://localhost:8001/docs/oauth2-redirect"
CLIENTS: dict[str, Any] = {
    "app": {
        "name": "The App",
        "redirect_uris": [APP_REDIRECT, "https://app.localhost/other"],
        "post_logout_redirect_uris": ["https://app.localhost/bye"],
        "secret_hash": hash_secret(SECRET),
    },
    "other": {
        "redirect_uris": ["https://other.localhost/callback"],
        "token_endpoint_auth_method": "client_secret_post",
        "secret_hash": hash_secret(OTHER_SECRET),
        "trusted": True,
        "id_token_signed_response_alg": "ES256",
    },
    "spa": {
        "name": "Swagger UI",
        "redirect_uris": [SPA_REDIRECT, "http://127.0.0.1/native"],
        "token_endpoint_auth_method": "none",
        "trusted": True,
    },
}


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


@dataclass
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        return cls(verifier, create_s256_code_challenge(verifier))


def auth_params(client_id: str = "app", redirect_uri: str = APP_REDIRECT, **extra: Any) -> dict[str, Any]:
    pkce = extra.pop("pkce", None) or Pkce.new()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile email offline_access",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {key: value for key, value in params.items() if value is not None}


async def authorize(http: httpx.AsyncClient, params: dict[str, Any]) -> httpx.Response:
    return await http.get("/oidc/authorize", params=params)


async def consent(http: httpx.AsyncClient, page: httpx.Response, decision: str = "allow") -> httpx.Response:
    """Submit the consent page's form (its hidden fields) with `decision`."""
    import re

    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
    import html

    form = {html.unescape(name): html.unescape(value) for name, value in fields}
    form["consent"] = decision
    return await http.post("/oidc/consent", data=form)


async def code_for(browser: Passkeys, **extra: Any) -> tuple[str, Pkce, dict[str, Any]]:
    """Authorize as a signed-in browser (consenting when asked); returns the code, PKCE and params."""
    pkce = extra.pop("pkce", None) or Pkce.new()
    params = auth_params(pkce=pkce, **extra)
    answer = await authorize(browser.http, params)
    if answer.status_code == 200 and "consent-form" in answer.text:
        answer = await consent(browser.http, answer)
    assert answer.status_code in (302, 303), answer.text
    query = query_of(answer.headers["location"])
    assert "code" in query, query
    return query["code"], pkce, params


async def exchange(
    http: httpx.AsyncClient,
    code: str,
    pkce: Pkce | None,
    *,
    client_id: str = "app",
    secret: str | None = "",
    redirect_uri: str = APP_REDIRECT,
    **form: Any,
) -> httpx.Response:
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if pkce is not None:
        body["code_verifier"] = pkce.verifier
    headers = {}
    if client_id == "app" and secret is not None:
        headers = basic("app", secret or SECRET)
    elif client_id == "other" and secret is not None:
        body.update(client_id="other", client_secret=secret or OTHER_SECRET)
    else:
        body["client_id"] = client_id
    body.update(form)
    return await http.post("/oidc/token", data=body, headers=headers)


async def signed_in(http: httpx.AsyncClient) -> Passkeys:
    browser = Passkeys(http)
    response = await browser.register()
    assert response.status_code == 200, response.text
    return browser


__all__ = ["ORIGIN"]
