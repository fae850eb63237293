"""Helpers for the page tests (`test_pages_*.py`): drive the real pages by clicking and typing, watch the
WebAuthn calls the pages make, run axe-core, save screenshots.

The fixtures (`passgate_server`, `passkey_page`, `browser`) come from `conftest.py`; `browsing.py` has
the CDP helpers. Hooks installed with `add_init_script` only *observe* the page's calls and pass them on
to the real browser API, except one switch: with `localStorage["passgate-test-hold-autofill"] = "1"` a
conditional (autofill) `get()` waits until it is aborted, as a real browser waits for the person to pick
a suggestion (headless Chromium resolves or rejects it at once, see BROWSER-TESTING.md).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.async_api import Locator, Page, expect

from browsing import IN_CI, SCREENSHOTS, PageFactory, PasskeyPage
from servers import RunningServer

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".ci" / "node" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
HOLD_AUTOFILL = "passgate-test-hold-autofill"

# Records every navigator.credentials.get() and Signal API call the page makes, then calls the real API.
WATCH_WEBAUTHN = """
(() => {
  const calls = (window.__passgateCalls = []);
  const signals = (window.__passgateSignals = []);
  if (!navigator.credentials) return;
  const realGet = navigator.credentials.get.bind(navigator.credentials);
  navigator.credentials.get = (options = {}) => {
    const mediation = options.mediation || "optional";
    const entry = { mediation, outcome: "pending", conditionalPending: null, at: performance.now() };
    if (mediation !== "conditional") {
      entry.conditionalPending = calls.some((c) => c.mediation === "conditional" && c.outcome === "pending");
    }
    calls.push(entry);
    const signal = options.signal;
    if (mediation === "conditional" && localStorage.getItem("HOLD") === "1") {
      return new Promise((_resolve, reject) => {
        const abort = () => { entry.outcome = "aborted"; reject(new DOMException("aborted", "AbortError")); };
        if (signal && signal.aborted) abort();
        else if (signal) signal.addEventListener("abort", abort, { once: true });
      });
    }
    return realGet(options).then(
      (credential) => { entry.outcome = "resolved"; return credential; },
      (error) => { entry.outcome = signal && signal.aborted ? "aborted" : error.name; throw error; },
    );
  };
  if (window.PublicKeyCredential) {
    const names = ["signalUnknownCredential", "signalAllAcceptedCredentials", "signalCurrentUserDetails"];
    for (const name of names) {
      const real = PublicKeyCredential[name];
      if (typeof real !== "function") continue;
      PublicKeyCredential[name] = (details) => {
        signals.push({ name, details: JSON.parse(JSON.stringify(details)) });
        return real.call(PublicKeyCredential, details);
      };
    }
  }
})();
""".replace("HOLD", HOLD_AUTOFILL)


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Wait until `check()` is true (polling), or fail."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{check.__name__} stayed false for {seconds} s")
        await asyncio.sleep(0.05)


async def pending_autofill(page: Page) -> bool:
    """Whether a conditional (autofill) request is armed and waiting."""
    return any(
        call["mediation"] == "conditional" and call["outcome"] == "pending" for call in await get_calls(page)
    )


async def tab_to(page: Page, target: Locator, presses: int = 40) -> None:
    """Press Tab until `target` has the focus: proves it is reachable with the keyboard alone."""
    for _ in range(presses):
        if await target.evaluate("element => element === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{target} not reached with {presses} Tab presses")


def unique_user() -> str:
    return f"ada-{uuid.uuid4().hex[:8]}@example.com"


async def watch(tab: PasskeyPage) -> None:
    """Install the WebAuthn watcher for every later navigation of this tab's context."""
    await tab.context.add_init_script(WATCH_WEBAUTHN)


async def hold_autofill(page: Page, hold: bool) -> None:
    await page.evaluate(
        "([key, hold]) => hold ? localStorage.setItem(key, '1') : localStorage.removeItem(key)",
        [HOLD_AUTOFILL, hold],
    )


async def get_calls(page: Page) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = await page.evaluate("window.__passgateCalls || []")
    return calls


async def signals(page: Page, name: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await page.evaluate("window.__passgateSignals || []")
    return [item for item in found if name is None or item["name"] == name]


async def sign_up(
    tab: PasskeyPage, server: RunningServer, user_name: str = "", display_name: str = ""
) -> str:
    """Create an account on /signup by typing and clicking; ends on the account page."""
    user_name = user_name or unique_user()
    page = tab.page
    await page.goto(f"{server.url}/signup")
    await page.get_by_label("Name or email").type(user_name)
    if display_name:
        await page.get_by_label("Display name (optional)").type(display_name)
    await page.get_by_role("button", name="Create account with a passkey").click()
    await page.wait_for_url("**/account?welcome=1")
    await expect(page.locator("#account-user-name")).to_have_text(user_name)
    return user_name


async def signed_up(
    passkey_page: PageFactory, server: RunningServer, **details: str
) -> tuple[PasskeyPage, str]:
    """A fresh tab (watched: console errors and WebAuthn calls) with a new account, on /account; and
    the account's name. `details`: `user_name`, `display_name` as for `sign_up`."""
    tab = await passkey_page(f"{server.url}/")
    await watch(tab)
    return tab, await sign_up(tab, server, **details)


async def sign_out(tab: PasskeyPage) -> None:
    """The header's Sign out; autofill is held first so the sign-in page does not sign straight back in."""
    await hold_autofill(tab.page, True)
    await tab.page.locator("header").get_by_role("button", name="Sign out").click()
    await tab.page.wait_for_url("**/signin?signed_out=1")
    await expect(tab.page.locator("#signed-out")).to_be_visible()
    status, _ = await tab.api("/auth/me")
    assert status == 401


async def problem(page: Page) -> str:
    """The text of the page's alert region once it shows."""
    region = page.locator("#problem")
    await expect(region).to_be_visible()
    return await region.inner_text()


async def create_device_link(page: Page) -> tuple[str, str]:
    """On the account page: create a device link; returns (URL, passphrase)."""
    shown = page.locator("#device-passphrase")
    previous = await shown.inner_text() if await page.locator("#device-link").is_visible() else ""
    await page.get_by_role("button", name="Create a device link").click()
    await expect(page.locator("#device-link")).to_be_visible()
    if previous:  # a link made before is still shown until the new one arrives
        await expect(shown).not_to_have_text(previous)
    url = await page.locator("#device-url").input_value()
    passphrase = await page.locator("#device-passphrase").inner_text()
    return url, passphrase


async def add_device(tab: PasskeyPage, url: str) -> None:
    """Open a device link in `tab` (its own authenticator), save a passkey there and be signed in."""
    await tab.page.goto(url)
    await tab.page.wait_for_url("**/device?link=1")
    await tab.page.get_by_role("button", name="Save a passkey on this device").click()
    await expect(tab.page.locator("#landing-done")).to_be_visible()


def expire_device_links(server: RunningServer) -> None:
    """Make every device link of this server's SQLite database expired (the TTL is 60 s at least)."""
    with sqlite3.connect(server.data_dir / "passgate.db") as database:
        database.execute("UPDATE device_links SET expires_at = 1")


async def add_foreign_credential(tab: PasskeyPage, rp_id: str = "localhost") -> str:
    """Put a discoverable credential the server never saw into the tab's authenticator; returns its
    id (base64url)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    credential_id = os.urandom(16)
    await tab.cdp.send(
        "WebAuthn.addCredential",
        {
            "authenticatorId": tab.authenticator_id,
            "credential": {
                "credentialId": base64.b64encode(credential_id).decode(),
                "isResidentCredential": True,
                "rpId": rp_id,
                "privateKey": base64.b64encode(pkcs8).decode(),
                "userHandle": base64.b64encode(os.urandom(32)).decode(),
                "signCount": 0,
            },
        },
    )
    return base64.urlsafe_b64encode(credential_id).rstrip(b"=").decode()


# --- accessibility and screenshots ---------------------------------------------------------------------


def require_axe() -> None:
    if AXE.is_file():
        return
    message = f"axe-core missing at {AXE} (npm install --no-save --prefix .ci/node axe-core@4)"
    if IN_CI:
        pytest.fail(f"{message}; it is required under CI=true")
    pytest.skip(message)


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA and best-practice rules on the page as it is now; serious and critical
    violations only."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated over DevTools: `add_script_tag` would be an inline script, which the CSP refuses.
        await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result: dict[str, Any] = await page.evaluate(
        """async () => await axe.run(document, {runOnly: {type: "tag",
             values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}})"""
    )
    return [
        {"id": item["id"], "impact": item["impact"], "nodes": [node["target"] for node in item["nodes"]][:5]}
        for item in result["violations"]
        if item["impact"] in ("serious", "critical")
    ]


async def assert_accessible(page: Page, name: str) -> None:
    violations = await serious_violations(page)
    assert violations == [], f"{name}: {json.dumps(violations, indent=1)}"


async def shoot(page: Page, name: str, *, full_page: bool = True) -> list[Path]:
    """Screenshots of the page at phone and desktop width in `test-artifacts/screenshots/` (`full_page`
    False for a modal dialog, whose backdrop covers only the viewport); the viewport is left at desktop
    size."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        path = SCREENSHOTS / f"page-{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        paths.append(path)
    return paths
