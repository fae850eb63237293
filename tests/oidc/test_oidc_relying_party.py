"""A real relying-party library (authlib's OAuth2Session, the client side of the library the provider is
built on, and its ID token claims checks) against a real `passgate serve`: discovery → code + PKCE →
tokens → ID token validation → userinfo → refresh (rotated) → revocation → RP-initiated logout, on
SQLite and on PostgreSQL. The client is registered with `passgate client add`, as an administrator
would."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Any

import httpx
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from oidckit import query_of
from servers import passgate_command, start_passgate
from softkey import SoftAuthenticator

REDIRECT = "https://rp.localhost/callback"
BYE = "https://rp.localhost/bye"


def register_client(env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        passgate_command(
            "client", "add", "rp", "--name", "Relying Party", "--redirect-uri", REDIRECT,
            "--post-logout-redirect-uri", BYE, "--trusted",
        ),
        env=env, cwd=cwd, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout.split("store it now): ")[1].split()[0]


async def sign_up(browser: httpx.AsyncClient, origin: str) -> None:
    authenticator = SoftAuthenticator()
    begin = await browser.post("/auth/register/begin", json={"user_name": f"rp-{secrets.token_hex(4)}"})
    credential = authenticator.create(begin.json(), origin=origin)
    assert (await browser.post("/auth/register/finish", json=credential)).status_code == 200


async def test_authlib_relying_party_against_passgate_serve(tmp_path: Path, database_url: str) -> None:
    with start_passgate(tmp_path, env={"PASSGATE_DATABASE_URL": database_url}) as server:
        secret = register_client(server.env, tmp_path / "server")
        async with httpx.AsyncClient(base_url=server.url, headers={"origin": server.url}) as browser:
            await sign_up(browser, server.url)
            metadata = (await browser.get("/.well-known/openid-configuration")).json()
            assert metadata["issuer"] == server.url
            rp = OAuth2Session(
                "rp", secret, scope="openid profile offline_access", redirect_uri=REDIRECT,
                code_challenge_method="S256", token_endpoint=metadata["token_endpoint"],
            )  # fmt: skip
            verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
            url, state = rp.create_authorization_url(
                metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
            )
            answer = await browser.get(url)
            assert answer.status_code == 302, answer.text
            callback = answer.headers["location"]
            assert query_of(callback)["iss"] == metadata["issuer"]  # RFC 9207, checked by the RP
            token = rp.fetch_token(authorization_response=callback, code_verifier=verifier, state=state)
            claims = validate_id_token(metadata, token, nonce)
            assert set(claims["amr"]) >= {"user"} and claims["auth_time"] <= claims["iat"]

            info = rp.get(metadata["userinfo_endpoint"]).json()
            assert info["sub"] == claims["sub"] and info["preferred_username"].startswith("rp-")

            first_refresh = token["refresh_token"]
            refreshed = rp.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
            assert refreshed["refresh_token"] != first_refresh
            assert validate_id_token(metadata, refreshed, None)["auth_time"] == claims["auth_time"]
            assert rp.get(metadata["userinfo_endpoint"]).status_code == 200

            reuse = await browser.post(
                metadata["token_endpoint"],
                data={"grant_type": "refresh_token", "refresh_token": first_refresh},
                auth=("rp", secret),
            )
            assert reuse.json()["error"] == "invalid_grant"  # and the family is gone:
            assert rp.get(metadata["userinfo_endpoint"]).status_code == 401

            logout = await browser.get(
                metadata["end_session_endpoint"],
                params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": BYE, "state": "x"},
            )
            assert logout.status_code == 302 and logout.headers["location"] == f"{BYE}?state=x"
            assert (await browser.get("/auth/me")).status_code == 401


def validate_id_token(metadata: dict[str, Any], token: dict[str, Any], nonce: str | None) -> dict[str, Any]:
    """What authlib's OpenID client does with an ID token: signature by the JWKS, then the claims."""
    keys = KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json())
    decoded = jwt.decode(
        token["id_token"], keys, algorithms=metadata["id_token_signing_alg_values_supported"]
    )
    params: dict[str, Any] = {"client_id": "rp", "access_token": token["access_token"]}
    if nonce:
        params["nonce"] = nonce
    claims = CodeIDToken(decoded.claims, decoded.header, {"iss": {"values": [metadata["issuer"]]}}, params)
    claims.validate(leeway=5)
    return dict(claims)
