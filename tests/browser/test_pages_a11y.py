"""Every page, in every state a person meets, checked with axe-core (WCAG 2.x A/AA and best practice: no
serious or critical violation) in light and dark (the step-up dialog is checked where it appears, in
`test_pages_stepup.py`), with screenshots at phone and desktop width saved to
`test-artifacts/screenshots/page-<name>-<phone|desktop|dark>.png` for review."""

from __future__ import annotations

import pytest
from pagekit import (
    DESKTOP,
    add_device,
    create_device_link,
    hold_autofill,
    require_axe,
    serious_violations,
    shoot,
    sign_out,
    sign_up,
    watch,
)
from playwright.async_api import Page, expect

from browsing import SCREENSHOTS, PageFactory, ServerFactory

pytestmark = pytest.mark.browser


class Review:
    """Collects each page's violations (light and dark) and screenshots; asserts once at the end."""

    def __init__(self) -> None:
        self.violations: dict[str, list[dict[str, object]]] = {}

    async def check(self, page: Page, name: str) -> None:
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
            found = await serious_violations(page)
            if found:
                self.violations[f"{name} ({scheme})"] = found
            if scheme == "dark":
                await page.screenshot(path=str(SCREENSHOTS / f"page-{name}-dark.png"), full_page=True)
            else:
                await shoot(page, name)
        await page.emulate_media(color_scheme="light")
        await page.set_viewport_size(DESKTOP)


async def test_every_page_is_accessible(passgate_server: ServerFactory, passkey_page: PageFactory) -> None:
    require_axe()
    server = passgate_server()
    review = Review()
    tab = await passkey_page(f"{server.url}/")
    await watch(tab)
    page = tab.page
    await page.set_viewport_size(DESKTOP)
    await review.check(page, "index")

    await page.goto(f"{server.url}/signup")
    await review.check(page, "signup")
    await tab.set_user_verified(False)
    await page.get_by_label("Name or email").fill("ada@example.com")
    await page.get_by_role("button", name="Create account with a passkey").click()
    await expect(page.locator("#problem")).to_be_visible()
    await review.check(page, "signup-error")
    await tab.set_user_verified(True)

    await sign_up(tab, server, display_name="Ada Lovelace")
    url, _ = await create_device_link(page)
    await review.check(page, "account")
    await page.locator("#passkey-list li.passkey").first.get_by_role("button", name="Rename").click()
    await page.locator("#passkey-list li.passkey").first.get_by_role("button", name="Remove").click()
    await expect(page.locator("#confirm")).to_be_visible()
    await review.check(page, "account-confirm")
    await page.locator("#confirm").get_by_role("button", name="Cancel").click()

    await page.goto(f"{server.url}/signin?return_to=/account")
    await review.check(page, "signin-signed-in")
    await page.goto(f"{server.url}/auth/selftest")
    await expect(page.locator("#verdict li.ok")).to_be_visible()
    await review.check(page, "selftest")

    await sign_out(tab)
    await hold_autofill(page, True)
    await page.goto(f"{server.url}/signin?return_to=https://evil.example/")
    await review.check(page, "signin")

    phone = await passkey_page(f"{server.url}/")
    await phone.page.set_viewport_size(DESKTOP)
    await phone.page.goto(url)
    await expect(phone.page.locator("#landing-valid")).to_be_visible()
    await review.check(phone.page, "device")
    await add_device(phone, url)
    await review.check(phone.page, "device-done")
    await phone.page.goto(url)
    await expect(phone.page.locator("#landing-invalid")).to_be_visible()
    await review.check(phone.page, "device-invalid")

    assert review.violations == {}
    assert tab.errors == [] and phone.errors == []
