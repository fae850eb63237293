"""A Chromium journey through nginx (the documented config): a protected URL → Passgate's sign-in
page → sign up with the virtual authenticator → back at the app, which receives the identity headers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Browser

from browsing import TIMEOUT_MS, ServerFactory, add_virtual_authenticator

if TYPE_CHECKING:
    from servers import RunningServer

pytest_plugins = ["proxying"]  # the nginx and echo-app fixtures (tests/proxying.py)
pytestmark = pytest.mark.browser


async def test_protected_url_sign_in_and_arrive(
    passgate_server: ServerFactory, browser: Browser, nginx_in_front: Callable[[RunningServer], str]
) -> None:
    server = passgate_server(PASSGATE_TRUSTED_PROXIES="127.0.0.1/32")
    app = nginx_in_front(server)
    wanted = f"{app}/reports/weekly?team=ops"
    context = await browser.new_context(ignore_https_errors=True)  # nginx has a self-signed certificate
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        await page.goto(wanted)
        await page.wait_for_url(f"{server.url}/signin?**")
        cdp = await context.new_cdp_session(page)
        await cdp.send("WebAuthn.enable", {"enableUI": False})
        await add_virtual_authenticator(cdp)
        await page.locator("#to-signup").click()
        await page.get_by_label("Name or email").type("grace@example.com")
        await page.get_by_role("button", name="Create account with a passkey").click()
        await page.wait_for_url(wanted)
        echoed = json.loads(await page.locator("body").inner_text())
        headers = dict(echoed["headers"])
        assert echoed["path"] == "/reports/weekly?team=ops"
        assert headers["remote-user"] == "grace@example.com"
        assert headers.get("remote-email", "") == ""  # a name like an address is no address: none set
        assert headers["x-auth-user-id"]
        assert "passgate=" not in headers.get("cookie", "")
    finally:
        await context.close()
