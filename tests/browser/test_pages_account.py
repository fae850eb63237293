"""The account page and device links in real Chromium, by clicking and typing. A second browser context
with its own virtual authenticator is a second device: it adds a passkey through a device link and signs
in; passkeys are renamed and removed under the core's rules; a link works once and an expired one says
so; ending another session signs that browser out; the display name reaches the authenticator."""

from __future__ import annotations

import asyncio
import base64
import re
import sqlite3

import pytest
from pagekit import (
    add_device,
    create_device_link,
    expire_device_links,
    problem,
    sign_up,
    signals,
    signed_up,
    watch,
)
from playwright.async_api import Page, expect

from browsing import PageFactory, PasskeyPage, ServerFactory, cdp_to_b64url
from servers import RunningServer, passgate_command

pytestmark = pytest.mark.browser
IN_USE = "You signed in with this passkey, so it can't be removed now. Sign in with another passkey first."
LINK_INVALID = "This device link can't be used: it has expired, was already used, or the words were mistyped."


def card(page: Page, name: str) -> object:
    return page.locator("#passkey-list li.passkey", has=page.locator("h3", has_text=re.compile(f"^{name}$")))


async def two_devices(
    server: RunningServer, passkey_page: PageFactory
) -> tuple[PasskeyPage, PasskeyPage, str]:
    """A person signed up in one context, then added a second device (context) through a link."""
    laptop = await passkey_page(f"{server.url}/")
    phone = await passkey_page(f"{server.url}/")
    for tab in (laptop, phone):
        await watch(tab)
    user_name = await sign_up(laptop, server)
    url, passphrase = await create_device_link(laptop.page)
    assert url == f"{server.url}/auth/{passphrase}" and re.fullmatch(r"[a-z]+(\.[a-z]+){5}", passphrase)
    await expect(laptop.page.locator("#device-rules")).to_contain_text("Works once, until")
    qr = laptop.page.locator("#device-qr")
    assert await qr.evaluate("image => image.complete && image.naturalWidth > 100"), (
        "the QR code did not render"
    )
    await add_device(phone, url)
    await expect(phone.page.locator("#landing-done-text")).to_contain_text(user_name)
    status, me = await phone.api("/auth/me")
    assert status == 200 and me["user_name"] == user_name
    assert len(await phone.credentials()) == 1
    return laptop, phone, user_name


async def test_second_device_rename_and_remove_with_the_rules(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    laptop, phone, _ = await two_devices(server, passkey_page)
    page = laptop.page
    await page.goto(f"{server.url}/account")
    await expect(page.locator("#passkey-list li.passkey")).to_have_count(2)
    await expect(page.locator("#passkey-warning")).to_contain_text("All your passkeys live on single devices")
    (phone_key,) = await phone.credentials()
    phone_id = cdp_to_b64url(phone_key["credentialId"])
    phone_card = page.locator(f'[data-credential-id="{phone_id}"]')

    # Rename the phone's passkey.
    await phone_card.get_by_role("button", name="Rename").click()
    await phone_card.get_by_role("textbox").fill("Work phone")
    await phone_card.get_by_role("button", name="Save").click()
    await expect(page.locator("#message")).to_have_text("Passkey renamed.")
    await expect(phone_card.locator("h3")).to_have_text("Work phone")
    await expect(phone_card.get_by_role("button", name="Rename “Work phone”")).to_be_focused()

    # The laptop's own passkey (this session's) cannot be removed.
    own = page.locator("#passkey-list li.passkey", has=page.get_by_text("Used for this session"))
    await own.get_by_role("button", name="Remove").click()
    await expect(page.locator("#confirm")).to_be_visible()
    await page.locator("#confirm").get_by_role("button", name="Remove").click()
    assert IN_USE in await problem(page)
    assert "Code: credential_in_use" in await problem(page)
    await expect(page.locator("#passkey-list li.passkey")).to_have_count(2)

    # Cancelling the confirmation changes nothing.
    await phone_card.get_by_role("button", name="Remove").click()
    await page.locator("#confirm").get_by_role("button", name="Cancel").click()
    await expect(page.locator("#passkey-list li.passkey")).to_have_count(2)

    # Remove the phone's passkey (the confirmation says its sessions end); the browser is told which
    # passkeys the account still accepts.
    await phone_card.get_by_role("button", name="Remove").click()
    await expect(page.locator("#confirm")).to_contain_text("every device signed in with it is signed out")
    await page.locator("#confirm").get_by_role("button", name="Remove").click()
    await expect(page.locator("#message")).to_have_text("Passkey removed.")
    await expect(page.locator("#passkey-list li.passkey")).to_have_count(1)
    await expect(page.locator("#passkey-warning")).to_contain_text("You have only one passkey")
    (laptop_key,) = await laptop.credentials()
    laptop_id = cdp_to_b64url(laptop_key["credentialId"])
    accepted = await signals(page, "signalAllAcceptedCredentials")
    assert accepted[-1]["details"]["allAcceptedCredentialIds"] == [laptop_id]

    # The phone's session ended with its passkey: it is sent to sign in again.
    await phone.page.goto(f"{server.url}/account")
    await expect(phone.page).to_have_url(re.compile(r"/signin\?"))
    assert laptop.errors == [] and phone.errors == []


async def test_device_link_works_once_and_expires(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    laptop = await passkey_page(f"{server.url}/")
    user_name = await sign_up(laptop, server)
    url, _ = await create_device_link(laptop.page)
    phone = await passkey_page(f"{server.url}/")
    await add_device(phone, url)

    # Used once already.
    tablet = await passkey_page(f"{server.url}/")
    await tablet.page.goto(url)
    await tablet.page.wait_for_url("**/device?link=invalid")
    await expect(tablet.page.locator("#landing-invalid")).to_contain_text(LINK_INVALID)
    await expect(tablet.page.locator("#landing-add")).to_be_hidden()

    # Expired: the link and the typed words both say so.
    url, passphrase = await create_device_link(laptop.page)
    expire_device_links(server)
    await tablet.page.goto(url)
    await tablet.page.wait_for_url("**/device?link=invalid")
    await expect(tablet.page.locator("#landing-invalid")).to_contain_text("expired")
    await tablet.page.get_by_label("The six words from your other device").fill(passphrase)
    await tablet.page.get_by_role("button", name="Continue").click()
    await expect(tablet.page.locator("#landing-invalid")).to_be_visible()
    await expect(tablet.page.locator("#landing-valid")).to_be_hidden()

    # A fresh link's six words, typed on the other device, work.
    _, passphrase = await create_device_link(laptop.page)
    await tablet.page.goto(f"{server.url}/device")
    await tablet.page.get_by_label("The six words from your other device").fill(passphrase.replace(".", " "))
    await tablet.page.get_by_role("button", name="Continue").click()
    await expect(tablet.page.locator("#landing-for")).to_contain_text(user_name)
    await expect(tablet.page.locator("#landing-rules")).to_contain_text("This link works once, until")
    await tablet.page.get_by_role("button", name="Save a passkey on this device").click()
    await expect(tablet.page.locator("#landing-done")).to_be_visible()
    status, me = await tablet.api("/auth/me")
    assert status == 200 and me["user_name"] == user_name
    assert laptop.errors == [] and phone.errors == [] and tablet.errors == []


async def test_end_another_session_signs_that_browser_out(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    laptop, phone, _ = await two_devices(server, passkey_page)
    page = laptop.page
    await page.goto(f"{server.url}/account")
    sessions = page.locator("#session-list li.session")
    await expect(sessions).to_have_count(2)
    await expect(sessions.first).to_contain_text("This browser")
    await expect(sessions.first).to_contain_text("Chrome (headless) on Linux")
    await sessions.nth(1).get_by_role("button", name=re.compile("^Sign out")).click()
    await expect(page.locator("#message")).to_have_text("That session is signed out.")
    await expect(sessions).to_have_count(1)

    await phone.page.goto(f"{server.url}/account")
    await phone.page.wait_for_url("**/signin?return_to=%2Faccount")
    status, _ = await phone.api("/auth/me")
    assert status == 401
    status, _ = await laptop.api("/auth/me")
    assert status == 200


async def test_add_passkey_here_and_display_name(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    server = passgate_server()
    tab, _ = await signed_up(passkey_page, server)
    page = tab.page

    # This authenticator already holds a passkey for the account (excludeCredentials): InvalidStateError.
    await page.locator("#add-passkey").click()
    text = await problem(page)
    assert "This device already has a passkey for your account, so there is nothing to add here." in text
    assert "InvalidStateError" in text

    # A new authenticator on this device: the passkey is added and listed.
    await tab.reset_authenticator()
    await page.locator("#add-passkey").click()
    await expect(page.locator("#message")).to_have_text("Passkey added.")
    await expect(page.locator("#passkey-list li.passkey")).to_have_count(2)
    await expect(page.locator("#problem")).to_be_hidden()

    # Groups (forward-auth rules) are listed when the account has some.
    await expect(page.locator("#groups")).to_have_count(0)
    user_name = await page.locator("#account-user-name").inner_text()
    command = passgate_command("user", "group", "add", user_name, "admins")
    cli = await asyncio.create_subprocess_exec(*command, env=server.env, cwd=server.data_dir.parent)
    assert await cli.wait() == 0
    await page.reload()
    await expect(page.locator("#groups .badge")).to_have_text("admins")

    # The display name changes, and the browser's passkey shows it.
    field = page.get_by_label("Display name", exact=True)
    await field.fill("Ada K. Lovelace")
    await page.get_by_role("button", name="Save name").click()
    await expect(page.locator("#message")).to_have_text("Name saved.")
    await expect(page.locator("#account-display-name")).to_have_text("Ada K. Lovelace")
    (details,) = await signals(page, "signalCurrentUserDetails")
    assert details["details"]["displayName"] == "Ada K. Lovelace"
    (credential,) = await tab.credentials()
    assert credential["userDisplayName"] == "Ada K. Lovelace"
    status, me = await tab.api("/auth/me")
    assert status == 200 and me["display_name"] == "Ada K. Lovelace"
    assert tab.errors == []


async def test_owner_unblocks_a_blocked_passkey_from_the_account_page(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    """A passkey blocked after a sign-count regression shows the block and an Unblock button; the owner,
    signed in (freshly) with another passkey, unblocks it after confirming."""
    server = passgate_server()
    laptop, phone, _ = await two_devices(server, passkey_page)
    phone_id = base64.b64decode((await phone.credentials())[0]["credentialId"])
    with sqlite3.connect(server.data_dir / "passgate.db") as database:
        database.execute(
            "UPDATE credentials SET flagged_at = 1, flag_reason = 'test' WHERE credential_id = ?", (phone_id,)
        )
    page = laptop.page
    await page.goto(f"{server.url}/account")
    blocked = page.locator("#passkey-list li.passkey", has=page.get_by_text("Blocked: possibly cloned"))
    await expect(blocked).to_have_count(1)
    await blocked.get_by_role("button", name=re.compile("^Unblock")).click()
    await expect(page.locator("#confirm")).to_contain_text("its sign-in counter went backwards")
    await page.locator("#confirm").get_by_role("button", name="Unblock").click()
    await expect(page.locator("#message")).to_have_text("Passkey unblocked. It can sign in again.")
    await expect(page.get_by_text("Blocked: possibly cloned")).to_have_count(0)
    status, info = await laptop.api("/auth/user-info", {})
    assert status == 200 and not any(item["flagged"] for item in info["credentials"])
    assert laptop.errors == []
