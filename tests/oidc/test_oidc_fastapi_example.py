"""The FastAPI example (`examples/fastapi-oidc/main.py`, walked through in docs/oidc.md) signing in through
a real `passgate serve`, its client registered with `passgate client add --public`:

- Swagger UI's part, with authlib playing Swagger UI: the app's OpenAPI document points at Passgate's
  discovery URL; the code flow with PKCE gives an access token, and the app's `/userinfo` returns the
  user from it;
- the app's own code flow (`/login` → Passgate → `/callback`), where the app verifies the ID token before
  it believes it; a replayed callback is refused."""

from __future__ import annotations

import importlib.util
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session

from oidckit import consent, query_of
from servers import RunningServer, passgate_command, start_passgate
from softkey import SoftAuthenticator

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi-oidc" / "main.py"
APP_URL = "http://localhost:8001"
CLIENT_ID = "fastapi-demo"


@pytest.fixture(scope="module")
def passgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("fastapi-example")
    with start_passgate(root) as server:
        subprocess.run(
            passgate_command(
                "client", "add", CLIENT_ID, "--public", "--name", "FastAPI demo",
                "--redirect-uri", f"{APP_URL}/docs/oauth2-redirect", "--redirect-uri", f"{APP_URL}/callback",
            ),
            env=server.env, cwd=root / "server", capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def example(passgate: RunningServer) -> Iterator[ModuleType]:
    """The example app, configured by its environment variables as its docstring says."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PASSGATE_URL", passgate.url)
        patch.setenv("APP_URL", APP_URL)
        spec = importlib.util.spec_from_file_location("fastapi_oidc_example", EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def browser_for(server: RunningServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers={"origin": server.url})


async def sign_up(browser: httpx.AsyncClient, server: RunningServer) -> None:
    begin = await browser.post("/auth/register/begin", json={"user_name": f"demo-{secrets.token_hex(4)}"})
    credential = SoftAuthenticator().create(begin.json(), origin=server.url)
    assert (await browser.post("/auth/register/finish", json=credential)).status_code == 200


async def authorize(browser: httpx.AsyncClient, url: str) -> str:
    """The browser at Passgate's authorization endpoint, allowing the app on the consent page the first
    time (it is not marked trusted); where Passgate sends it back."""
    answer = await browser.get(url)
    if answer.status_code == 200 and "consent-form" in answer.text:
        answer = await consent(browser, answer)
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["location"]


def app_client(example: ModuleType) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=example.app), base_url=APP_URL)


async def test_swagger_ui_code_flow_then_userinfo(passgate: RunningServer, example: ModuleType) -> None:
    async with app_client(example) as app, browser_for(passgate) as browser:
        await sign_up(browser, passgate)
        scheme = (await app.get("/openapi.json")).json()["components"]["securitySchemes"]["OpenIdConnect"]
        metadata = (await browser.get(scheme["openIdConnectUrl"])).json()
        assert metadata["issuer"] == passgate.url
        assert (await app.get("/userinfo")).status_code in (401, 403)  # no token: FastAPI refuses

        # What Swagger UI does on Authorize: a public client, code flow with PKCE, no secret.
        swagger = OAuth2Session(
            CLIENT_ID, scope="openid profile", redirect_uri=f"{APP_URL}/docs/oauth2-redirect",
            code_challenge_method="S256", token_endpoint_auth_method="none",
        )  # fmt: skip
        verifier = secrets.token_urlsafe(48)
        url, state = swagger.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier
        )
        token = swagger.fetch_token(
            metadata["token_endpoint"],
            authorization_response=await authorize(browser, url),
            code_verifier=verifier,
            state=state,
        )
        me = (await browser.get("/auth/me")).json()
        info = await app.get("/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert info.status_code == 200
        assert info.json()["sub"] == me["user_id"] and info.json()["preferred_username"] == me["user_name"]
        forged = await app.get("/userinfo", headers={"Authorization": "Bearer not-a-token"})
        assert forged.status_code == 401


async def test_the_app_verifies_the_id_token_itself(passgate: RunningServer, example: ModuleType) -> None:
    async with app_client(example) as app, browser_for(passgate) as browser:
        await sign_up(browser, passgate)
        start = await app.get("/login")
        assert start.status_code == 302 and start.headers["location"].startswith(
            f"{passgate.url}/oidc/authorize"
        )
        callback = await authorize(browser, start.headers["location"])
        assert callback.startswith(f"{APP_URL}/callback?") and query_of(callback)["iss"] == passgate.url
        done = await app.get(callback)
        assert done.status_code == 200, done.text
        claims = done.json()["signed_in"]
        me = (await browser.get("/auth/me")).json()
        assert claims["sub"] == me["user_id"] and claims["aud"] == CLIENT_ID and claims["iss"] == passgate.url
        assert "user" in claims["amr"] and claims["auth_time"] <= claims["iat"]
        assert (await app.get(callback)).status_code == 400  # the same answer again: refused
