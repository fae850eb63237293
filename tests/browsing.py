"""Real-browser helpers: Debian's headless Chromium driven by Playwright over CDP, with Chromium's virtual
authenticator (facts and pitfalls: BROWSER-TESTING.md in the design notes). The fixtures that use these
live in `tests/browser/conftest.py`; import the types and helpers from here (`from browsing import
PasskeyPage, cdp_to_b64url`), never from a conftest.

Pitfalls: always `http://localhost:PORT` (an IP is not a valid RP ID); at most three discoverable
credentials per virtual authenticator (`clear_credentials()` or `reset_authenticator()` between cases);
a ceremony without a working authenticator hangs until its timeout, so keep Playwright timeouts short.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, CDPSession, Page

from servers import RunningServer

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = os.environ.get("PASSGATE_TEST_CHROMIUM", "/usr/bin/chromium")
# Needed as root on a closed network (BROWSER-TESTING.md). Playwright makes its own fresh profile.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's per-action / per-expect timeout (ms). Ceremonies here take well under a second.
TIMEOUT_MS = 5_000
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
# A server for browser tests: the shortest ceremony timeout the server accepts.
BROWSER_SERVER_ENV = {"PASSGATE_CEREMONY_TIMEOUT_MS": "10000"}
AUTHENTICATOR_OPTIONS: dict[str, Any] = {
    "protocol": "ctap2",
    "ctap2Version": "ctap2_1",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


# --- CDP helpers -------------------------------------------------------------------------------------


def cdp_to_b64url(value: str) -> str:
    """CDP binary fields are standard base64 with padding; WebAuthn JSON uses unpadded base64url."""
    return base64.urlsafe_b64encode(base64.b64decode(value)).rstrip(b"=").decode()


def b64url_to_cdp(value: str) -> str:
    return base64.b64encode(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))).decode()


async def add_virtual_authenticator(cdp: CDPSession, **options: Any) -> str:
    """`WebAuthn.addVirtualAuthenticator` with `AUTHENTICATOR_OPTIONS` updated by `options`."""
    params = {"options": {**AUTHENTICATOR_OPTIONS, **options}}
    result = await cdp.send("WebAuthn.addVirtualAuthenticator", params)
    authenticator_id: str = result["authenticatorId"]
    return authenticator_id


async def get_credentials(cdp: CDPSession, authenticator_id: str) -> list[dict[str, Any]]:
    """Every credential the authenticator holds: `credentialId`, `rpId`, `privateKey` (PKCS#8, base64),
    `userHandle`, `signCount`, `backupEligibility`, `backupState`, `userName`…"""
    result = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    credentials: list[dict[str, Any]] = result["credentials"]
    return credentials


async def set_response_override_bits(cdp: CDPSession, authenticator_id: str, **bits: bool) -> None:
    """`isBogusSignature`, `isBadUV`, `isBadUP` (all reset to False unless given)."""
    await cdp.send("WebAuthn.setResponseOverrideBits", {"authenticatorId": authenticator_id, **bits})


async def set_credential_properties(
    cdp: CDPSession, authenticator_id: str, credential_id: str, **properties: Any
) -> None:
    """`signCount`, `backupState`, `backupEligibility` of one credential (`credential_id` as CDP gives it)."""
    await cdp.send(
        "WebAuthn.setCredentialProperties",
        {"authenticatorId": authenticator_id, "credentialId": credential_id, **properties},
    )


async def clear_credentials(cdp: CDPSession, authenticator_id: str) -> None:
    await cdp.send("WebAuthn.clearCredentials", {"authenticatorId": authenticator_id})


# --- A page with its authenticator -------------------------------------------------------------------


@dataclass
class PasskeyPage:
    """A fresh browser context and page with a virtual authenticator. Unpacks as
    `page, cdp, authenticator_id = tab`. `console` collects the page's console lines and `errors` its
    uncaught JavaScript errors (assert `tab.errors == []` to catch broken scripts)."""

    context: BrowserContext
    page: Page
    cdp: CDPSession
    authenticator_id: str
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.page, self.cdp, self.authenticator_id))

    async def credentials(self) -> list[dict[str, Any]]:
        return await get_credentials(self.cdp, self.authenticator_id)

    async def set_response_override_bits(self, **bits: bool) -> None:
        await set_response_override_bits(self.cdp, self.authenticator_id, **bits)

    async def set_credential_properties(self, credential_id: str, **properties: Any) -> None:
        await set_credential_properties(self.cdp, self.authenticator_id, credential_id, **properties)

    async def clear_credentials(self) -> None:
        await clear_credentials(self.cdp, self.authenticator_id)

    async def set_user_verified(self, verified: bool) -> None:
        await self.cdp.send(
            "WebAuthn.setUserVerified", {"authenticatorId": self.authenticator_id, "isUserVerified": verified}
        )

    async def reset_authenticator(self, **options: Any) -> str:
        """Replace the authenticator with a new, empty one (only one `internal` one fits a page)."""
        await self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.authenticator_id})
        self.authenticator_id = await add_virtual_authenticator(self.cdp, **options)
        return self.authenticator_id

    async def api(self, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the server from inside the page (same origin, its cookies): GET without `body`, POST
        JSON with it. Returns the status and the parsed JSON body (None when there is none)."""
        script = """async ([path, body]) => {
            const init = body === null ? {credentials: "same-origin"} : {method: "POST",
                credentials: "same-origin", headers: {"content-type": "application/json"},
                body: JSON.stringify(body)};
            const response = await fetch(path, init);
            const text = await response.text();
            let json = null;
            try { json = text ? JSON.parse(text) : null; } catch { json = null; }
            return [response.status, json];
        }"""
        status, data = await self.page.evaluate(script, [path, body])
        return int(status), data

    async def screenshot(self, name: str) -> Path:
        return await screenshot(self.page, name)


async def screenshot(page: Page, name: str) -> Path:
    """Save `test-artifacts/screenshots/<name>.png` (gitignored) and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def open_passkey_page(
    browser: Browser, url: str, *, check: bool = True, **authenticator_options: Any
) -> PasskeyPage:
    """A new context (fresh cookies) and page at `url`, with `WebAuthn.enable {enableUI: false}` and a
    virtual authenticator (`AUTHENTICATOR_OPTIONS` updated by `authenticator_options`). With `check`,
    an error status for `url` fails at once (with the start of the body) instead of later, in a locator."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = await context.new_page()
    console: list[str] = []
    errors: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = await page.goto(url)
    if check and response is not None and not response.ok:
        body = (await response.text())[:500]
        await context.close()
        raise AssertionError(f"GET {url} answered {response.status}: {body}")
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    authenticator_id = await add_virtual_authenticator(cdp, **authenticator_options)
    return PasskeyPage(context, page, cdp, authenticator_id, console, errors)


ServerFactory = Callable[..., RunningServer]
"""The `passgate_server` fixture: `passgate_server(**env) -> RunningServer`."""
PageFactory = Callable[..., Awaitable[PasskeyPage]]
"""The `passkey_page` fixture: `await passkey_page(url, check=True, **authenticator_options)`."""
