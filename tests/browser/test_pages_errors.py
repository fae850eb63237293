"""Errors on the pages in real Chromium, each with its mapped message: a cancelled ceremony, a bogus
signature, a credential no account owns (the page calls `signalUnknownCredential` and Chromium drops the
passkey), and a server whose allowed origins leave out the page's (the self-test says so)."""

from __future__ import annotations

import pytest
from pagekit import (
    add_foreign_credential,
    get_calls,
    hold_autofill,
    pending_autofill,
    problem,
    sign_out,
    sign_up,
    signals,
    signed_up,
    unique_user,
    until,
    watch,
)
from playwright.async_api import expect

from browsing import PageFactory, ServerFactory

pytestmark = pytest.mark.browser
CANCELLED = "The passkey request was cancelled or timed out, or no passkey here matches."
SIGN_IN_FAILED = "Sign-in failed. Try again or use another passkey."
UNKNOWN = "This passkey is not registered here any more (it may have been removed)."


async def test_cancelled_ceremony_then_retry(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    tab = await passkey_page(f"{server.url}/signup")
    page = tab.page
    await tab.set_user_verified(False)  # the person dismisses the prompt: NotAllowedError at once
    user_name = unique_user()
    await page.get_by_label("Name or email").fill(user_name)
    await page.get_by_role("button", name="Create account with a passkey").click()
    text = await problem(page)
    assert CANCELLED in text and "Code: NotAllowedError" in text
    assert page.url == f"{server.url}/signup"

    await tab.set_user_verified(True)
    await page.get_by_role("button", name="Create account with a passkey").click()
    await page.wait_for_url("**/account?welcome=1")
    await expect(page.locator("#account-user-name")).to_have_text(user_name)


async def test_taken_name_is_said_at_the_field(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    tab = await passkey_page(f"{server.url}/")
    user_name = await sign_up(tab, server)
    other = await passkey_page(f"{server.url}/signup")
    field = other.page.get_by_label("Name or email")
    await field.fill(user_name)
    await field.blur()  # options are fetched ahead: the name is checked before the click
    await expect(other.page.locator("#user_name-error")).to_have_text(
        "That name is taken. Choose another, or sign in if it is yours."
    )
    await expect(field).to_have_attribute("aria-invalid", "true")
    await other.page.get_by_role("button", name="Create account with a passkey").click()
    await expect(field).to_be_focused()
    assert await other.credentials() == []


async def test_bogus_signature_is_refused_and_autofill_rearmed(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    tab, _ = await signed_up(passkey_page, server)
    page = tab.page
    await sign_out(tab)
    await tab.set_response_override_bits(isBogusSignature=True)
    await until(lambda: pending_autofill(page))
    await page.get_by_role("button", name="Sign in with a passkey").click()
    text = await problem(page)
    assert SIGN_IN_FAILED in text and "Code: sign_in_failed" in text
    status, _ = await tab.api("/auth/me")
    assert status == 401
    await until(lambda: pending_autofill(page))  # re-armed after the error

    await tab.set_response_override_bits(isBogusSignature=False)
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await expect(page.locator("#signed-in")).to_be_visible()
    await expect(page.locator("#problem")).to_be_hidden()


async def test_unknown_credential_is_signalled(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    tab = await passkey_page(f"{server.url}/")
    await watch(tab)
    page = tab.page
    credential_id = await add_foreign_credential(tab)
    await page.goto(f"{server.url}/signin")  # autofill offers it at once; the server owns no such passkey
    text = await problem(page)
    assert UNKNOWN in text and "Code: sign_in_failed" in text
    (call,) = await signals(page, "signalUnknownCredential")
    assert call["details"] == {"rpId": "localhost", "credentialId": credential_id}
    assert await tab.credentials() == []  # Chromium acted on the signal
    assert (await get_calls(page))[0]["mediation"] == "conditional"
    status, _ = await tab.api("/auth/me")
    assert status == 401
    assert tab.errors == []


async def test_wrong_origin_setup(passgate_server: ServerFactory, passkey_page: PageFactory) -> None:
    server = passgate_server(PASSGATE_ORIGINS="http://localhost")  # not this page's origin (its port)
    tab = await passkey_page(f"{server.url}/auth/selftest")
    page = tab.page
    verdict = page.locator("#verdict li.bad")
    await expect(verdict).to_have_count(1)
    await expect(verdict).to_contain_text(
        f"This page's origin {server.url} is not in the server's allowed origins (http://localhost)"
    )
    await expect(verdict).to_contain_text("PASSGATE_ORIGINS")
    await expect(page.locator("#verdict li.ok")).to_have_count(0)

    await hold_autofill(page, True)
    await page.goto(f"{server.url}/signin")
    await page.get_by_role("button", name="Sign in with a passkey").click()
    text = await problem(page)
    assert "The server refused this page's address" in text and "Code: cross_site_request" in text
    await expect(page.locator("#problem").get_by_role("link", name="Open the self-test")).to_have_attribute(
        "href", "/auth/selftest"
    )
