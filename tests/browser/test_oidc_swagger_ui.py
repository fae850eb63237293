"""The FastAPI example (`examples/fastapi-oidc/main.py`, walked through in docs/oidc.md) signing in through
Swagger UI's Authorize button in real Chromium, as its docstring says a person would:

open the app's `/docs` (Swagger UI served from the app itself: no request leaves the two servers), press
Authorize, pick the scopes; Swagger UI opens Passgate's authorization endpoint in a popup (code flow with
PKCE, RFC 7636), the person signs in there with their passkey and allows the app; Passgate sends the
popup back to the registered `/docs/oauth2-redirect`, Swagger UI redeems the code from the page (CORS)
and sends the access token to the app's `/userinfo`, which answers with the person.

The app runs under uvicorn as its docstring says, its client registered with `passgate client add
--public` as docs/oidc.md shows."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from pagekit import sign_out, signed_up
from playwright.async_api import Page, Request, expect

from browsing import PageFactory, PasskeyPage, ServerFactory, add_virtual_authenticator
from oidckit import query_of
from servers import STARTUP_TIMEOUT, RunningServer, free_port, passgate_command, stop_process

pytestmark = pytest.mark.browser
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi-oidc"
CLIENT_ID = "fastapi-demo"


def register(server: RunningServer, redirect_uri: str) -> None:
    """`passgate client add … --public` (not trusted: the person is asked once), as docs/oidc.md says."""
    subprocess.run(
        passgate_command(
            "client", "add", CLIENT_ID, "--public", "--name", "FastAPI demo", "--redirect-uri", redirect_uri
        ),
        env=server.env, cwd=server.data_dir.parent, capture_output=True, check=True, timeout=60,
    )  # fmt: skip


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the example exited:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            httpx.get(f"{url}/openapi.json", timeout=2.0).raise_for_status()
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"the example did not answer:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def example(
    passgate_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, str]]:
    """Passgate, and the example app on `http://localhost:<port>` (`uvicorn main:app`); yields the
    app's URL."""
    server = passgate_server()
    port = free_port()
    app_url = f"http://localhost:{port}"
    register(server, f"{app_url}/docs/oauth2-redirect")
    log = tmp_path_factory.mktemp("fastapi-example") / "uvicorn.log"
    # Only what the app reads (no inherited proxy variables between the app and Passgate).
    env = {"PATH": "/usr/bin:/bin", "PASSGATE_URL": server.url, "APP_URL": app_url, "CLIENT_ID": CLIENT_ID}
    command = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=EXAMPLE, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(app_url, process, log)
        yield server, app_url
    finally:
        stop_process(process)


async def give_authenticator(popup: Page, tab: PasskeyPage) -> None:
    """A virtual authenticator lives in one tab: give the popup one holding the same passkey, as the
    person's platform authenticator would be there in every window."""
    cdp = await tab.context.new_cdp_session(popup)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    authenticator_id = await add_virtual_authenticator(cdp)
    for credential in await tab.credentials():
        keep = ("credentialId", "isResidentCredential", "rpId", "privateKey", "userHandle", "signCount")
        await cdp.send(
            "WebAuthn.addCredential",
            {"authenticatorId": authenticator_id, "credential": {key: credential[key] for key in keep}},
        )


async def test_swagger_ui_authorize_then_userinfo(
    example: tuple[RunningServer, str], passkey_page: PageFactory
) -> None:
    server, app_url = example
    tab, user_name = await signed_up(passkey_page, server)
    await sign_out(tab)
    page = tab.page
    requests: list[Request] = []
    tab.context.on("request", lambda request: requests.append(request))

    async with page.expect_response(f"{server.url}/.well-known/openid-configuration") as discovery:
        await page.goto(f"{app_url}/docs")  # Swagger UI reads Passgate's discovery document (CORS)
    assert (await discovery.value).ok
    await page.locator(".auth-wrapper").get_by_role("button", name="Authorize").click()
    dialog = page.locator(".modal-ux")
    flow = dialog.locator(".auth-container").filter(has_text="Flow: authorization_code with PKCE")
    await expect(flow.get_by_label("client_id:")).to_have_value(CLIENT_ID)  # from swagger_ui_init_oauth
    for scope in ("openid", "profile"):
        await flow.locator(f"label[for^='{scope}-']").click()

    async with page.expect_popup() as opened:
        await flow.get_by_role("button", name="Apply given OAuth2 credentials").click()
    popup = await opened.value
    await popup.wait_for_url(f"{server.url}/signin?return_to=%2Foidc%2Fauthorize*")
    authorize = next(r.url for r in requests if r.url.startswith(f"{server.url}/oidc/authorize?"))
    asked = query_of(authorize)
    assert asked["client_id"] == CLIENT_ID and asked["code_challenge_method"] == "S256"
    assert asked["redirect_uri"] == f"{app_url}/docs/oauth2-redirect"
    assert set(asked["scope"].split()) == {"openid", "profile"}

    # In the popup: sign in with the passkey, then allow the app (first time, not trusted).
    await give_authenticator(popup, tab)
    await popup.get_by_role("button", name="Sign in with a passkey").click()
    await popup.wait_for_url(f"{server.url}/oidc/authorize?*")
    await expect(popup.get_by_role("heading", level=1)).to_contain_text("FastAPI demo")
    async with popup.expect_event("close"):
        await popup.get_by_role("button", name="Allow", exact=True).click()

    # Back in Swagger UI: the code was redeemed from the page, with the PKCE verifier.
    await expect(flow.get_by_role("heading", name="Authorized")).to_be_visible()
    await expect(flow.get_by_role("button", name="Remove authorization")).to_be_visible()
    redirect = next(r.url for r in requests if r.url.startswith(f"{app_url}/docs/oauth2-redirect?"))
    assert query_of(redirect)["iss"] == server.url and query_of(redirect)["state"] == asked["state"]
    (token_request,) = [r for r in requests if r.url == f"{server.url}/oidc/token"]
    sent = parse_qs(token_request.post_data or "")
    assert sent["grant_type"] == ["authorization_code"] and sent["code_verifier"][0]
    assert "client_secret" not in sent
    await flow.get_by_role("button", name="Close").click()

    # Try it out on /userinfo: the app asks Passgate who holds the token.
    operation = page.locator("#operations-default-userinfo_userinfo_get")
    await operation.locator(".opblock-summary-control").click()
    await operation.get_by_role("button", name="Try it out").click()
    await operation.get_by_role("button", name="Execute").click()
    response = operation.locator(".live-responses-table .response")
    await expect(response.locator(".response-col_status")).to_have_text("200")
    await expect(response.locator(".response-col_description .highlight-code pre")).to_contain_text(
        f'"preferred_username": "{user_name}"'
    )
    (call,) = [r for r in requests if r.url == f"{app_url}/userinfo"]
    assert (await call.all_headers())["authorization"].startswith("Bearer ")

    # Swagger UI came from the app itself: nothing was fetched from anywhere but the two servers.
    assert [r.url for r in requests if not r.url.startswith((app_url, server.url))] == []
    assert tab.errors == []
