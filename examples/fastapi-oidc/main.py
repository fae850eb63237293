"""A FastAPI app that signs people in with Passgate (OpenID Connect), walked through in docs/oidc.md.

    passgate client add fastapi-demo --public --name "FastAPI demo" \\
        --redirect-uri http://localhost:8001/docs/oauth2-redirect --redirect-uri http://localhost:8001/callback
    PASSGATE_URL=https://passgate.example.com uvicorn main:app --port 8001

Two ways in:

- `/docs`: Swagger UI's Authorize button runs the code flow with PKCE in the browser and sends the access
  token as `Authorization: Bearer …`; `/userinfo` asks Passgate who that is (a few lines, as with any
  OpenID provider: only the discovery URL is Passgate's). Swagger UI's files come from the
  `swagger-ui-bundle-v2` package rather than FastAPI's default CDN, so the page works offline.
- `/login` → Passgate → `/callback`: the app runs the code flow itself (PKCE, `state`, `nonce`) and
  **verifies the ID token** — signature from Passgate's JWKS, `iss`, `aud`, `exp`, `nonce`, `at_hash` —
  before it believes anything in it (OIDC Core §3.1.3.7), then would start its own session.

Settings (environment): `PASSGATE_URL` (Passgate's public URL, the issuer), `CLIENT_ID` (default
`fastapi-demo`), `APP_URL` (this app's own URL, default `http://localhost:8001`).
"""

from __future__ import annotations

import os
import secrets
from typing import Annotated, Any

import httpx
import swagger_ui_bundle
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OpenIdConnect
from fastapi.staticfiles import StaticFiles
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

PASSGATE_URL = os.environ.get("PASSGATE_URL", "http://localhost:8000").rstrip("/")
CLIENT_ID = os.environ.get("CLIENT_ID", "fastapi-demo")
APP_URL = os.environ.get("APP_URL", "http://localhost:8001").rstrip("/")
DISCOVERY = f"{PASSGATE_URL}/.well-known/openid-configuration"

app = FastAPI(
    title="Passgate FastAPI demo",
    docs_url=None,  # served below, from local files
    swagger_ui_init_oauth={"clientId": CLIENT_ID, "usePkceWithAuthorizationCodeGrant": True},
)
app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")
openid = OpenIdConnect(openIdConnectUrl=DISCOVERY)
pending: dict[str, tuple[str, str]] = {}  # state → (PKCE verifier, nonce); a real app keeps it per browser


async def metadata() -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        document: dict[str, Any] = (await http.get(DISCOVERY)).raise_for_status().json()
    if document["issuer"] != PASSGATE_URL:  # OpenID Connect Discovery 1.0 §4.3
        raise HTTPException(502, "the discovery document names another issuer")
    return document


@app.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=app.title,
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png",
        oauth2_redirect_url="/docs/oauth2-redirect",  # the redirect URI registered with Passgate
        init_oauth=app.swagger_ui_init_oauth,
    )


@app.get("/docs/oauth2-redirect", include_in_schema=False)
async def oauth2_redirect() -> HTMLResponse:
    """Where Passgate sends the Authorize popup back: hands the code to Swagger UI in the opener."""
    return get_swagger_ui_oauth2_redirect_html()


@app.get("/userinfo")
async def userinfo(auth_header: Annotated[str, Depends(openid)]) -> Any:
    """Who holds this access token, according to Passgate (Swagger UI's Authorize button sends it)."""
    async with httpx.AsyncClient() as http:
        endpoint = (await metadata())["userinfo_endpoint"]
        answer = await http.get(endpoint, headers={"Authorization": auth_header})
    if answer.status_code != 200:
        raise HTTPException(401, "Passgate did not accept the access token")
    return answer.json()


def client() -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        CLIENT_ID,
        scope="openid profile email",
        redirect_uri=f"{APP_URL}/callback",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",  # noqa: S106 (a public client: no secret, PKCE)
    )


@app.get("/login")
async def login() -> RedirectResponse:
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    async with client() as oauth:
        url, state = oauth.create_authorization_url(
            (await metadata())["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
    pending[state] = (verifier, nonce)
    return RedirectResponse(url, status_code=302)


@app.get("/callback")
async def callback(request: Request, state: str = "", iss: str = "") -> dict[str, Any]:
    """Redeem the code, then verify the ID token before trusting it."""
    found = await metadata()
    if state not in pending or iss != found["issuer"]:  # RFC 9207: the answer comes from our issuer
        raise HTTPException(400, "unknown state or wrong issuer")
    verifier, nonce = pending.pop(state)
    async with client() as oauth:
        try:
            token = await oauth.fetch_token(
                found["token_endpoint"],
                authorization_response=str(request.url),
                code_verifier=verifier,
                state=state,
            )
        except (OAuthError, httpx.HTTPError) as error:
            raise HTTPException(400, f"the code was not accepted: {error}") from None
        keys = KeySet.import_key_set((await oauth.get(found["jwks_uri"])).json())
    try:
        algorithms = found["id_token_signing_alg_values_supported"]
        decoded = jwt.decode(token["id_token"], keys, algorithms=algorithms)
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"values": [found["issuer"]]}, "auth_time": {"essential": True}},
            {"client_id": CLIENT_ID, "nonce": nonce, "access_token": token["access_token"]},
        )
        claims.validate(leeway=30)
    except (JoseError, ValueError, KeyError) as error:
        raise HTTPException(400, f"the ID token is not valid: {error}") from None
    # Here a real app starts its own session for claims["sub"].
    return {"signed_in": dict(claims)}
