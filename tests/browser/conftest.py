"""Fixtures for real-browser tests (helpers and types: `tests/browsing.py`).

    pytestmark = pytest.mark.browser

    async def test_sign_up(passgate_server: ServerFactory, passkey_page: PageFactory) -> None:
        server = passgate_server(PASSGATE_ALGORITHMS="RS256,ES256,EdDSA")  # one server per env, per module
        tab = await passkey_page(server.url + "/")       # fresh context + page + virtual authenticator
        await tab.page.click("#signup")
        await expect(tab.page.locator("#status")).to_have_text("Sign up: done.")
        (credential,) = await tab.credentials()         # WebAuthn.getCredentials
        status, body = await tab.api("/auth/user-info", {})  # fetch() from the page, with its cookie

- `passgate_server(**env)` (module scope): a factory; each distinct `env` starts one real
  `passgate serve` (`tests/servers.py`) on `http://localhost:<free port>` with its own data dir, kept
  until the module ends. The virtual authenticator uses the first of the server's `pubKeyCredParams` it
  supports, so `PASSGATE_ALGORITHMS` picks the algorithm under test.
- `browser` (module scope): one headless Chromium per module. Skips when Chromium is absent, fails
  under `CI=true`.
- `passkey_page(url, check=True, **authenticator_options)` (function scope): a factory; each call opens
  a fresh browser context (no cookies) and page, navigates to `url` (`PublicKeyCredential` does not
  exist on `about:blank`; with `check` an error status fails at once) and adds a virtual
  authenticator (`browsing.AUTHENTICATOR_OPTIONS` updated by the options). Pages are closed after the
  test; when the test failed, a screenshot of each is saved to
  `test-artifacts/screenshots/<test name>-<n>.png`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Playwright, async_playwright

from browsing import (
    BROWSER_SERVER_ENV,
    CHROMIUM,
    CHROMIUM_FLAGS,
    IN_CI,
    PageFactory,
    PasskeyPage,
    ServerFactory,
    open_passkey_page,
)
from servers import RunningServer, start_passgate


@pytest.fixture(scope="module")
def passgate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """`passgate_server(**env)` → a running `passgate serve` on `http://localhost:<free port>` with its
    own data dir; the same `env` within a module returns the same server. `env` adds to (or overrides)
    `BROWSER_SERVER_ENV` and `tests/servers.py`'s defaults (origin, generous rate limit)."""
    servers: dict[tuple[tuple[str, str], ...], RunningServer] = {}
    with contextlib.ExitStack() as stack:

        def start(**env: str) -> RunningServer:
            merged = {**BROWSER_SERVER_ENV, **env}
            key = tuple(sorted(merged.items()))
            if key not in servers:
                root = tmp_path_factory.mktemp("browser-server")
                servers[key] = stack.enter_context(start_passgate(root, env=merged))
            return servers[key]

        yield start


def require_chromium() -> None:
    """Skip when Chromium is absent, except under `CI=true`, where that fails the test."""
    if not Path(CHROMIUM).is_file():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium or set PASSGATE_TEST_CHROMIUM)"
        if IN_CI:
            pytest.fail(f"{message}; it is required under CI=true")
        pytest.skip(message)


@pytest.fixture(scope="session")
async def playwright_driver() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
async def browser(playwright_driver: Playwright) -> AsyncIterator[Browser]:
    """Headless Debian Chromium (never a Playwright-downloaded build)."""
    require_chromium()
    instance = await playwright_driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS, timeout=30_000
    )
    yield instance
    await instance.close()


_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item so `passkey_page` can screenshot failed tests."""
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


@pytest.fixture
async def passkey_page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[PageFactory]:
    """`await passkey_page(url, **authenticator_options)` → a `PasskeyPage` (see `open_passkey_page`).
    Closed after the test; screenshots saved when the test failed."""
    tabs: list[PasskeyPage] = []

    async def open_page(url: str, *, check: bool = True, **authenticator_options: Any) -> PasskeyPage:
        tab = await open_passkey_page(browser, url, check=check, **authenticator_options)
        tabs.append(tab)
        return tab

    yield open_page
    call = request.node.stash.get(_reports, {}).get("call")
    for number, tab in enumerate(tabs):
        if call is not None and call.failed:
            with contextlib.suppress(Exception):
                await tab.screenshot(f"{request.node.name}-{number}")
        await tab.context.close()
