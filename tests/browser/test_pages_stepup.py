"""Step-up on the account page in real Chromium: with `PASSGATE_STEPUP_MAX_AGE=2`, an action taken after
the last passkey check is older than that answers `reauth_required`; the page asks for a passkey check in
a dialog and then finishes the action, without losing what the person was doing."""

from __future__ import annotations

import asyncio
import time

import pytest
from pagekit import assert_accessible, require_axe, shoot, sign_up, signed_up
from playwright.async_api import expect

from browsing import PageFactory, ServerFactory, cdp_to_b64url

pytestmark = pytest.mark.browser
MAX_AGE = 2


async def wait_until_stale(tab: object) -> None:
    status, me = await tab.api("/auth/me")  # type: ignore[attr-defined]
    assert status == 200
    await asyncio.sleep(max(0.0, me["auth_time"] + MAX_AGE + 1.05 - time.time()))


async def test_stale_check_asks_for_passkey_then_finishes(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    require_axe()
    server = passgate_server(PASSGATE_STEPUP_MAX_AGE=str(MAX_AGE))
    tab, _ = await signed_up(passkey_page, server)
    page = tab.page
    dialog = page.locator("#stepup")

    # Cancelled: nothing happens, and the page says so.
    await wait_until_stale(tab)
    await page.get_by_role("button", name="Create a device link").click()
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("button", name="Confirm with passkey")).to_be_focused()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    assert "Nothing changed: the passkey check was cancelled." in await page.locator("#problem").inner_text()
    await expect(page.locator("#device-link")).to_be_hidden()

    # Confirmed: the check refreshes auth_time and the same action completes.
    await page.get_by_role("button", name="Create a device link").click()
    await expect(dialog).to_be_visible()
    await assert_accessible(page, "step-up dialog")
    await shoot(page, "stepup", full_page=False)
    before = (await tab.api("/auth/me"))[1]["auth_time"]
    await dialog.get_by_role("button", name="Confirm with passkey").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#device-link")).to_be_visible()
    await expect(page.locator("#device-passphrase")).to_have_text(r_words())
    status, me = await tab.api("/auth/me")
    assert status == 200 and me["auth_time"] > before and me["stepup_fresh"] is True
    await expect(page.locator("#problem")).to_be_hidden()
    assert tab.errors == []


def r_words() -> object:
    import re

    return re.compile(r"^[a-z]+(\.[a-z]+){5}$")


async def test_removal_waits_for_the_check_and_keeps_the_choice(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server(PASSGATE_STEPUP_MAX_AGE=str(MAX_AGE))
    tab = await passkey_page(f"{server.url}/")
    page = tab.page
    await sign_up(tab, server)
    (first,) = await tab.credentials()
    await tab.reset_authenticator()  # a second authenticator on this device
    await page.locator("#add-passkey").click()
    await expect(page.locator("#passkey-list li.passkey")).to_have_count(2)
    (second,) = await tab.credentials()

    # The person picked the first passkey to remove; the check (done with the second) comes in between.
    await wait_until_stale(tab)
    first_card = page.locator(f'[data-credential-id="{cdp_to_b64url(first["credentialId"])}"]')
    await first_card.get_by_role("button", name="Remove").click()
    await page.locator("#confirm").get_by_role("button", name="Remove").click()
    dialog = page.locator("#stepup")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Confirm with passkey").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#message")).to_have_text("Passkey removed.")
    remaining = page.locator("#passkey-list li.passkey")
    await expect(remaining).to_have_count(1)
    await expect(remaining).to_have_attribute("data-credential-id", cdp_to_b64url(second["credentialId"]))
    assert tab.errors == []
