"""The sign-in pages in real Chromium, by clicking and typing: sign up → sign out → sign in by passkey
autofill → sign out → sign in with the button (the pending autofill request aborted first); `return_to`
honoured for this site and refused for a foreign host; the self-test on a correct setup."""

from __future__ import annotations

import pytest
from pagekit import (
    get_calls,
    hold_autofill,
    pending_autofill,
    sign_out,
    signals,
    signed_up,
    tab_to,
    unique_user,
    until,
)
from playwright.async_api import expect

from browsing import PageFactory, ServerFactory

pytestmark = pytest.mark.browser


async def test_sign_up_then_autofill_then_button(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    tab, user_name = await signed_up(passkey_page, server, display_name="Ada Lovelace")
    page = tab.page
    await expect(page.locator("#welcome")).to_be_visible()
    assert len(await tab.credentials()) == 1

    await sign_out(tab)
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    name_field = page.get_by_label("Your name")
    assert await name_field.get_attribute("autocomplete") == "username webauthn"

    # Passkey autofill: armed on load; headless Chromium answers a conditional request at once.
    await hold_autofill(page, False)
    await page.reload()
    await expect(page.locator("#signed-in")).to_be_visible()
    await expect(page.locator("#signed-in [data-me=user_name]")).to_have_text(user_name)
    await expect(page.locator("#signed-in [data-me=display_name]")).to_have_text("Ada Lovelace")
    await expect(page.locator("#message")).to_have_text("Signed in as Ada Lovelace.")
    calls = await get_calls(page)
    assert [call["mediation"] for call in calls] == ["conditional"]
    assert calls[0]["outcome"] == "resolved"
    status, me = await tab.api("/auth/me")
    assert status == 200 and me["user_name"] == user_name
    accepted = await signals(page, "signalAllAcceptedCredentials")
    (credential,) = await tab.credentials()
    assert accepted and accepted[-1]["details"]["allAcceptedCredentialIds"] == [
        credential["credentialId"].replace("+", "-").replace("/", "_").rstrip("=")
    ]

    # The button: autofill is armed and waiting (held), so the page must abort it before get().
    await sign_out(tab)
    await until(lambda: pending_autofill(page))
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await expect(page.locator("#signed-in")).to_be_visible()
    calls = await get_calls(page)
    modal = [call for call in calls if call["mediation"] != "conditional"]
    assert len(modal) == 1 and modal[0]["outcome"] == "resolved"
    assert modal[0]["conditionalPending"] is False, "the autofill request was still pending"
    assert any(call["mediation"] == "conditional" and call["outcome"] == "aborted" for call in calls)
    status, me = await tab.api("/auth/me")
    assert status == 200 and me["user_name"] == user_name
    assert tab.errors == []


async def test_return_to_is_honoured_for_this_site_and_refused_for_others(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    tab, _ = await signed_up(passkey_page, server)
    page = tab.page
    await sign_out(tab)

    # Allowed: an absolute URL on this site (as forward-auth sends it), via `return_to`.
    await page.goto(f"{server.url}/signin?return_to={server.url}/account%3Ffrom%3Dreturn")
    await expect(page.locator("#return-to")).to_contain_text(f"localhost:{server.port}/account")
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await page.wait_for_url(f"{server.url}/account?from=return")

    # Allowed: the `rd` spelling and a path; sign-up keeps it on its link.
    await sign_out(tab)
    await page.goto(f"{server.url}/signin?rd=/account%3Fvia%3Drd")
    assert await page.locator("#to-signup").get_attribute("href") == "/signup?return_to=%2Faccount%3Fvia%3Drd"
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await page.wait_for_url(f"{server.url}/account?via=rd")

    # Refused: a foreign host is named, not followed.
    await sign_out(tab)
    await page.goto(f"{server.url}/signin?return_to=https://evil.example/steal")
    await expect(page.locator("#return-refused")).to_contain_text("evil.example")
    await expect(page.locator("#return-to")).to_have_count(0)
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await expect(page.locator("#signed-in")).to_be_visible()
    assert page.url == f"{server.url}/signin?return_to=https://evil.example/steal"
    await expect(page.locator("#continue")).to_have_count(0)

    # Signed in already and sent back with a return URL: a plain "Continue" link to it.
    await page.goto(f"{server.url}/signin?return_to=/account")
    await expect(page.locator("#continue")).to_have_attribute("href", "/account")
    assert tab.errors == []


async def test_selftest_reports_a_matching_setup(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    tab = await passkey_page(f"{server.url}/auth/selftest")
    page = tab.page
    await expect(page.locator("#verdict li.ok")).to_have_text(
        "Everything matches: passkeys should work on this page."
    )
    await expect(page.locator("#verdict li.bad")).to_have_count(0)
    await expect(page.locator("#fact-origin")).to_have_text(server.url)
    await expect(page.locator("#server-rp-id")).to_have_text("localhost")
    await expect(page.locator("#server-origins")).to_have_text(server.url)
    await expect(page.locator("#fact-conditional")).to_have_text("yes")
    await expect(page.locator("#fact-capabilities")).to_contain_text("signalUnknownCredential: yes")
    assert tab.errors == []


async def test_keyboard_only(passgate_server: ServerFactory, passkey_page: PageFactory) -> None:
    """Sign up, rename a passkey and back out of a removal with the keyboard alone; focus lands where the
    next key press is expected."""
    server = passgate_server()
    tab = await passkey_page(f"{server.url}/")
    page = tab.page
    await page.goto(f"{server.url}/signup")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    await tab_to(page, page.get_by_label("Name or email"))
    user_name = unique_user()
    await page.keyboard.type(user_name)
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Display name (optional)")).to_be_focused()
    await page.keyboard.type("Ada")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/account?welcome=1")

    # Named after the browser that made it (no authenticator is known by the virtual one's AAGUID).
    rename = page.locator("#passkey-list").get_by_role("button", name="Rename “Chrome (headless) on Linux”")
    await tab_to(page, rename)
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("New name for “Chrome (headless) on Linux”")).to_be_focused()
    await page.keyboard.press("Control+A")  # the field holds the current name, to edit or replace
    await page.keyboard.type("Laptop")
    await page.keyboard.press("Enter")
    await expect(page.locator("#message")).to_have_text("Passkey renamed.")
    renamed = page.locator("#passkey-list").get_by_role("button", name="Rename “Laptop”")
    await expect(renamed).to_be_focused()

    remove = page.locator("#passkey-list").get_by_role("button", name="Remove “Laptop”")
    await page.keyboard.press("Tab")
    await expect(remove).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm").get_by_role("button", name="Cancel")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#confirm")).to_be_hidden()
    await expect(remove).to_be_focused()
    await expect(page.locator("#passkey-list li.passkey")).to_have_count(1)
    assert tab.errors == []
