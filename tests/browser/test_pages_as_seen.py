"""Every page in every state a person meets, looked at as a person would: at phone and desktop size, in
light and dark, each state is photographed and checked for what a careful reader would notice —

- no state contradicts another: never "You are signed out." next to "You are signed in as …", the
  header's links match the session, the tab title matches the heading, never a success line and an
  error at once;
- no status or error box covers a form control, and none floats over the content (fixed or sticky);
- nothing is wider than a phone's screen;
- a mistyped address shows the site's own "page not found" page (JSON stays for API clients).

Screenshots go to `test-artifacts/screenshots/seen/<state>-<phone|desktop>-<light|dark>.png`. With
`PASSGATE_UPDATE_SCREENSHOTS=1`, the ones the docs show are also written to `docs/screenshots/`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from pagekit import AXE, DESKTOP, PHONE, ROOT, hold_autofill, serious_violations, sign_out, sign_up, watch
from playwright.async_api import Page, expect

from browsing import SCREENSHOTS, PageFactory, ServerFactory

pytestmark = pytest.mark.browser

SEEN = SCREENSHOTS / "seen"
DOCS = ROOT / "docs" / "screenshots"
UPDATE_DOCS = os.environ.get("PASSGATE_UPDATE_SCREENSHOTS") == "1"
STEPUP_SECONDS = 4  # PASSGATE_STEPUP_MAX_AGE of the walk-through
# The screenshots the README and docs/pages.md show.
DOC_SHOTS = {
    "index-signed-in-desktop-light",
    "signin-phone-light",
    "signin-signed-in-desktop-light",
    "signin-after-sign-out-phone-dark",
    "signup-desktop-light",
    "signup-error-phone-light",
    "account-desktop-light",
    "account-desktop-dark",
    "account-add-here-phone-light",
    "confirm-remove-phone-light",
    "stepup-desktop-light",
    "device-phone-light",
    "device-words-phone-dark",
    "device-done-phone-light",
    "device-invalid-phone-light",
    "selftest-desktop-light",
    "notfound-phone-light",
    "notfound-desktop-dark",
    "docs-desktop-dark",
}

# What a person checks, as one script over the page as it is displayed now; returns every problem seen.
LOOK = """
() => {
  const problems = [];
  const shown = (el) => {
    if (!el || el.closest("[hidden]")) return false;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.display !== "none" && style.visibility !== "hidden" && box.width > 0 && box.height > 0;
  };
  const text = document.body.innerText;
  if (/You are signed out/.test(text) && /You are signed in/.test(text)) {
    problems.push("says signed out and signed in at once");
  }
  const signedIn = document.body.dataset.signedIn === "yes";
  const header = document.querySelector("header.site nav");
  if (header) {
    const links = [...header.querySelectorAll("a, button")].filter(shown);
    const visible = links.map((el) => el.textContent.trim());
    const wrong = signedIn ? ["Sign in", "Create account"] : ["Sign out", "Your account"];
    const state = signedIn ? "in" : "out";
    for (const label of wrong.filter((label) => visible.includes(label))) {
      problems.push(`header shows "${label}" while signed ${state}`);
    }
  }
  const h1 = document.querySelector("h1");
  if (h1 && shown(h1) && !document.querySelector("#swagger-ui")) {
    const heading = h1.textContent.trim();
    if (!document.title.startsWith(heading)) {
      problems.push(`tab title "${document.title}" vs heading "${heading}"`);
    }
  }
  const signedInSection = document.getElementById("signed-in");
  if (signedInSection && shown(signedInSection) && h1 && h1.textContent.trim() === "Sign in") {
    problems.push("heading says Sign in above You are signed in");
  }
  const regions = "#message, #problem, .message, .problem, [role=status], [role=alert]";
  const boxes = [...document.querySelectorAll(regions)]
    .filter((el) => shown(el) && el.textContent.trim() && !el.closest("dialog:not([open])"));
  const success = boxes.some((el) => el.id === "message" && el.dataset.kind === "success");
  const error = boxes.some((el) => el.id === "problem");
  if (success && error) problems.push("a success line and an error at once");
  const controls = [...document.querySelectorAll("input, button, select, textarea, a.button")].filter(shown);
  for (const box of boxes) {
    const position = getComputedStyle(box).position;
    const label = box.id || box.className;
    if (position === "fixed" || position === "sticky") problems.push(`#${label} is ${position}`);
    const a = box.getBoundingClientRect();
    for (const control of controls) {
      if (box.contains(control)) continue;
      const b = control.getBoundingClientRect();
      const across = a.left < b.right - 1 && b.left < a.right - 1;
      const down = a.top < b.bottom - 1 && b.top < a.bottom - 1;
      if (across && down) problems.push(`#${label} covers ${control.id || control.textContent.trim()}`);
    }
  }
  const width = document.documentElement.scrollWidth;
  if (width > window.innerWidth + 1) problems.push(`wider than the screen: ${width} > ${window.innerWidth}`);
  return problems;
}
"""


class Looker:
    """Photographs a state at phone and desktop size, light and dark, and collects what looks wrong."""

    def __init__(self) -> None:
        self.problems: dict[str, list[str]] = {}
        self.shots: list[Path] = []
        SEEN.mkdir(parents=True, exist_ok=True)

    async def look(self, page: Page, state: str, *, full_page: bool = True) -> None:
        for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
            await page.set_viewport_size(size)
            for scheme in ("light", "dark"):
                await page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
                name = f"{state}-{size_name}-{scheme}"
                found: list[str] = await page.evaluate(LOOK)
                if found:
                    self.problems[name] = found
                path = SEEN / f"{name}.png"
                await page.screenshot(path=str(path), full_page=full_page, animations="disabled")
                self.shots.append(path)
        await page.emulate_media(color_scheme="light")
        await page.set_viewport_size(DESKTOP)

    def publish(self) -> None:
        if not UPDATE_DOCS:
            return
        DOCS.mkdir(parents=True, exist_ok=True)
        for path in self.shots:
            if path.stem in DOC_SHOTS:
                shutil.copyfile(path, DOCS / path.name)


async def test_every_page_as_a_person_sees_it(
    passgate_server: ServerFactory, passkey_page: PageFactory
) -> None:
    # Long enough for the screenshots between a passkey check and the action that relies on it on a
    # slow machine (1 s was not), short enough to wait out once.
    server = passgate_server(PASSGATE_STEPUP_MAX_AGE=str(STEPUP_SECONDS))
    looker = Looker()
    tab = await passkey_page(f"{server.url}/")
    await watch(tab)
    page = tab.page
    await page.set_viewport_size(DESKTOP)
    await looker.look(page, "index")
    await page.locator("#signup").click()
    await expect(page.locator("#status")).to_have_text("Sign up: done.")
    await expect(page.locator("header").get_by_role("button", name="Sign out")).to_be_visible()
    await looker.look(page, "index-signed-in")
    await page.locator("#logout").click()
    await expect(page.locator("#status")).to_have_text("Sign out: done.")
    await expect(page.locator("header").get_by_role("link", name="Sign in")).to_be_visible()

    await page.goto(f"{server.url}/signup")
    await looker.look(page, "signup")
    await tab.set_user_verified(False)
    await page.get_by_label("Name or email").fill("ada@example.com")
    await page.get_by_role("button", name="Create account with a passkey").click()
    await expect(page.locator("#problem")).to_be_visible()
    await looker.look(page, "signup-error")
    await tab.set_user_verified(True)

    await tab.clear_credentials()
    await sign_up(tab, server, display_name="Ada Lovelace")
    await looker.look(page, "account-welcome")
    # Right after sign-up, "add a passkey on this device": this device has one already; say so to a
    # signed-in person.
    await page.locator("#add-passkey").click()
    problem = page.locator("#problem")
    await expect(problem).to_contain_text("nothing to add here")
    await looker.look(page, "account-add-here")
    await page.reload()
    await looker.look(page, "account")
    await page.locator("#passkey-list li.passkey").first.get_by_role("button", name="Remove").click()
    await expect(page.locator("#confirm")).to_be_visible()
    await looker.look(page, "confirm-remove", full_page=False)
    await page.locator("#confirm").get_by_role("button", name="Cancel").click()
    await asyncio.sleep(STEPUP_SECONDS + 0.1)  # the check went stale: the next sensitive action asks again
    await page.get_by_role("button", name="Create a device link").click()
    await expect(page.locator("#stepup")).to_be_visible()
    await looker.look(page, "stepup", full_page=False)
    await page.locator("#stepup").get_by_role("button", name="Confirm with passkey").click()
    await expect(page.locator("#device-link")).to_be_visible()
    url = await page.locator("#device-url").input_value()
    await looker.look(page, "account-device-link")

    await page.goto(f"{server.url}/auth/selftest")
    await expect(page.locator("#verdict li.ok")).to_be_visible()
    await expect(page.locator("#capabilities-plain")).to_be_visible()
    await looker.look(page, "selftest")

    # Sign out, then sign in again on the same page: it must never say both.
    await sign_out(tab)
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    await looker.look(page, "signin-after-sign-out")
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await expect(page.locator("#signed-in")).to_be_visible()
    await expect(page.locator("h1")).to_have_text("You are signed in")
    await expect(page.get_by_text("You are signed out.")).to_have_count(0)
    await looker.look(page, "signin-signed-in")
    await expect(page.locator("#message")).to_be_empty(timeout=10_000)  # the success line clears itself

    await sign_out(tab)
    await hold_autofill(page, True)
    await page.goto(f"{server.url}/signin?return_to=https://evil.example/")
    await looker.look(page, "signin")

    other = await passkey_page(f"{server.url}/device")
    await looker.look(other.page, "device-words")
    await other.page.get_by_label("The six words from your other device").fill("apple.river.stone")
    await other.page.get_by_role("button", name="Continue").click()
    await expect(other.page.locator("#landing-invalid")).to_be_visible()
    await looker.look(other.page, "device-words-wrong")
    await other.page.goto(url)
    await expect(other.page.locator("#landing-valid")).to_be_visible()
    await looker.look(other.page, "device")
    await other.page.get_by_role("button", name="Save a passkey on this device").click()
    await expect(other.page.locator("#landing-done")).to_be_visible()
    await looker.look(other.page, "device-done")
    await other.page.goto(url)
    await expect(other.page.locator("#landing-invalid")).to_be_visible()
    await looker.look(other.page, "device-invalid")

    answer = await other.page.goto(f"{server.url}/acount")  # a mistyped address, signed in
    assert answer is not None and answer.status == 404
    await expect(other.page.locator("h1")).to_have_text("Page not found")
    await expect(other.page.locator("header .brand")).to_be_visible()
    background = await other.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(247, 247, 248)"  # the site's stylesheet, not a bare page
    await looker.look(other.page, "notfound")
    if AXE.is_file():  # the page's own axe-core check (every other page has one in test_pages_a11y.py)
        assert await serious_violations(other.page) == []
    status, body = await other.api("/acount")  # an API client still gets JSON
    assert status == 404 and body == {"error": "Not Found", "code": "not_found"}

    await other.page.goto(f"{server.url}/docs", timeout=30_000)  # Swagger UI's bundle is ~1.5 MB
    await expect(other.page.locator("#docs-back")).to_be_visible()
    await expect(other.page.locator(".swagger-ui .info")).to_be_visible()
    await looker.look(other.page, "docs")

    looker.publish()
    assert looker.problems == {}
    assert tab.errors == [] and other.errors == []


def test_docs_show_only_screenshots_that_exist() -> None:
    """Every screenshot the README and docs show is in docs/screenshots/, and nothing there is unused."""
    import re

    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    shown = {name for path in texts for name in re.findall(r"screenshots/([\w.-]+\.png)", path.read_text())}
    present = {path.name for path in DOCS.glob("*.png")}
    assert shown - present == set(), "shown but missing"
    assert present - shown == set(), "in docs/screenshots but shown nowhere"
    assert {f"{name}.png" for name in DOC_SHOTS} == present, "DOC_SHOTS and docs/screenshots differ"
