""" "Sign in with Passgate" in real Chromium with a virtual authenticator: a relying party's authorization
request → Passgate's sign-in page → the consent page → back to the relying party's redirect URI with a
code, which the relying party redeems with authlib and whose ID token it verifies (OIDC Core §3.1.3.7).
Then `prompt=login` and `max_age=0` (OIDC Core §3.1.2.1) each force a real passkey check with user
verification, and the new ID token carries a later `auth_time`.

The relying party is a tiny HTTP server run by the test on a loopback address (a redirect URI RFC 8252
§7.3 allows), registered with `passgate client add` as an administrator would."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from pagekit import sign_out, signed_up
from playwright.async_api import Page, expect

from browsing import PageFactory, PasskeyPage, ServerFactory
from oidckit import query_of
from passgate.oidc.claims import ACR_PASSKEY_UV
from servers import RunningServer, free_port, passgate_command

pytestmark = pytest.mark.browser
CLIENT_ID = "journey"


class RelyingParty:
    """An OpenID Connect client on `http://127.0.0.1:<port>`: `/login` (extra query parameters go into
    the authorization request) redirects to Passgate; `/callback` checks `state` and `iss` (RFC 9207),
    redeems the code with PKCE, verifies the ID token and keeps its claims in `signed_in`."""

    def __init__(self, metadata: dict[str, Any], secret: str, port: int):
        self.metadata = metadata
        self.secret = secret
        self.redirect_uri = f"http://127.0.0.1:{port}/callback"
        self.login_url = f"http://127.0.0.1:{port}/login"
        self.pending: dict[str, tuple[str, str]] = {}  # state → (PKCE verifier, nonce)
        self.signed_in: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def session(self) -> OAuth2Session:
        return OAuth2Session(
            CLIENT_ID,
            self.secret,
            scope="openid profile",
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
        )

    def start_login(self, extra: dict[str, str]) -> str:
        verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
        url, state = self.session().create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
        )
        self.pending[state] = (verifier, nonce)
        return str(url)

    def finish_login(self, callback: str) -> dict[str, Any]:
        query = query_of(callback)
        if query.get("iss") != self.metadata["issuer"]:
            raise ValueError(f"iss {query.get('iss')!r} is not the issuer")
        verifier, nonce = self.pending.pop(query["state"])
        token = self.session().fetch_token(
            self.metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
            state=query["state"],
        )
        keys = KeySet.import_key_set(httpx.get(self.metadata["jwks_uri"]).json())
        decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"values": [self.metadata["issuer"]]}, "auth_time": {"essential": True}},
            {"client_id": CLIENT_ID, "nonce": nonce, "access_token": token["access_token"]},
        )
        claims.validate(leeway=5)
        return dict(claims)


def handler_for(rp: RelyingParty) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            try:
                if path == "/login":
                    self.answer(302, "", rp.start_login(query_of(self.path)))
                elif path == "/callback":
                    claims = rp.finish_login(f"http://127.0.0.1:{self.server.server_port}{self.path}")
                    rp.signed_in.append(claims)
                    self.answer(200, f'<title>RP</title><p id="rp-user">{claims["sub"]}</p>')
                else:
                    self.answer(404, "not found")
            except Exception as error:  # the test reads what went wrong
                rp.errors.append(repr(error))
                self.answer(400, f'<title>RP</title><p id="rp-error">{error!r}</p>')

        def answer(self, status: int, body: str, location: str | None = None) -> None:
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def relying_party(passgate_server: ServerFactory) -> Iterator[tuple[RunningServer, RelyingParty]]:
    server = passgate_server()
    port = free_port()
    secret = register(server, f"http://127.0.0.1:{port}/callback")
    metadata = httpx.get(f"{server.url}/.well-known/openid-configuration").json()
    rp = RelyingParty(metadata, secret, port)
    http = ThreadingHTTPServer(("127.0.0.1", port), handler_for(rp))
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield server, rp
    http.shutdown()
    http.server_close()


def register(server: RunningServer, redirect_uri: str) -> str:
    """`passgate client add` (not trusted: the person is asked once); returns the secret it prints."""
    result = subprocess.run(
        passgate_command("client", "add", CLIENT_ID, "--name", "Journey App", "--redirect-uri", redirect_uri),
        env=server.env,
        cwd=server.data_dir.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.split("store it now): ")[1].split()[0]


async def back_at_rp(page: Page, rp: RelyingParty, count: int) -> dict[str, Any]:
    """Wait for the relying party's page after its `count`-th sign-in; its verified ID token claims."""
    await page.wait_for_url(f"{rp.redirect_uri}?*")
    assert rp.errors == []
    await expect(page.locator("#rp-user")).to_be_visible()
    assert len(rp.signed_in) == count
    return rp.signed_in[-1]


async def sign_count(tab: PasskeyPage) -> int:
    (credential,) = await tab.credentials()
    count: int = credential["signCount"]
    return count


async def recheck(tab: PasskeyPage, server: RunningServer, rp: RelyingParty, ask: dict[str, str]) -> None:
    """Start a sign-in asking for a fresh check: Passgate's sign-in page asks to confirm with the passkey
    (no plain "Continue" link), and the check happens in the authenticator."""
    page = tab.page
    await page.goto(f"{rp.login_url}?{urlencode(ask)}")
    await page.wait_for_url(f"{server.url}/signin?*")
    assert "reauth=1" in page.url
    await expect(page.locator("#reauth")).to_contain_text(f"localhost:{server.port}")
    await expect(page.locator("#continue")).to_have_count(0)
    before = await sign_count(tab)
    await page.get_by_role("button", name="Confirm with your passkey and continue").click()
    await page.wait_for_url(f"{rp.redirect_uri}?*")
    assert await sign_count(tab) == before + 1  # a real assertion by the authenticator


async def next_second(after: int) -> None:
    """`auth_time` is in whole seconds: let the clock pass `after` so a new check is visibly later."""
    await asyncio.sleep(max(0.0, after + 1.05 - time.time()))


async def test_sign_in_with_passgate_then_forced_rechecks(
    relying_party: tuple[RunningServer, RelyingParty], passkey_page: PageFactory
) -> None:
    server, rp = relying_party
    tab, user_name = await signed_up(passkey_page, server)
    page = tab.page
    await sign_out(tab)

    # The app sends the person to Passgate; not signed in, they land on the sign-in page, and come back.
    await page.goto(rp.login_url)
    await page.wait_for_url(f"{server.url}/signin?return_to=%2Foidc%2Fauthorize*")
    await expect(page.locator("#return-to")).to_contain_text(f"localhost:{server.port}")
    await page.get_by_role("button", name="Sign in with a passkey").click()

    # First sign-in to a client that is not trusted: the consent page, naming the app.
    await page.wait_for_url(f"{server.url}/oidc/authorize?*")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Journey App")
    await page.get_by_role("button", name="Allow", exact=True).click()
    first = await back_at_rp(page, rp, 1)
    assert query_of(page.url)["iss"] == server.url and "code" in query_of(page.url)
    assert first["preferred_username"] == user_name and first["acr"] == ACR_PASSKEY_UV
    assert "user" in first["amr"] and first["auth_time"] <= first["iat"]

    # Signed in already and consent remembered: straight back, same check.
    await page.goto(rp.login_url)
    again = await back_at_rp(page, rp, 2)
    assert again["auth_time"] == first["auth_time"] and again["sub"] == first["sub"]

    # prompt=login: a real re-check, and a later auth_time.
    await next_second(first["auth_time"])
    await recheck(tab, server, rp, {"prompt": "login"})
    after_login = await back_at_rp(page, rp, 3)
    assert after_login["auth_time"] > first["auth_time"] and after_login["sub"] == first["sub"]
    assert after_login["acr"] == ACR_PASSKEY_UV

    # max_age=0: the same, however fresh the last check.
    await next_second(after_login["auth_time"])
    await recheck(tab, server, rp, {"max_age": "0"})
    after_max_age = await back_at_rp(page, rp, 4)
    assert after_max_age["auth_time"] > after_login["auth_time"]
    assert tab.errors == []
