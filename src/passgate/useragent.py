"""A short, human name for a device from its User-Agent header ("Firefox on Android"): shown for
sessions, and given to a passkey whose authenticator is not known by its AAGUID ("Chrome on Linux",
"Chrome on Linux 2" for the second on the same account), so people can tell their passkeys apart."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome (headless)", re.compile(r"\bHeadlessChrome/")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS|Chromium)/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
)
SYSTEMS = (
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def describe(user_agent: str, both: str = "{browser} on {system}") -> str | None:
    """`both` filled with the browser and system names, either name alone, or None when nothing is
    recognised. `both` comes from the strings module, so it can be translated."""
    browser = next((name for name, pattern in BROWSERS if pattern.search(user_agent)), None)
    system = next((name for name, pattern in SYSTEMS if pattern.search(user_agent)), None)
    if browser and system:
        return both.format(browser=browser, system=system)
    return browser or system


def passkey_name(user_agent: str, taken: Iterable[str], fallback: str = "Passkey") -> str:
    """The device's name, numbered when the account already has a passkey by that name."""
    base = describe(user_agent) or fallback
    names = {name.strip().lower() for name in taken}
    if base.lower() not in names:
        return base
    number = 2
    while f"{base} {number}".lower() in names:
        number += 1
    return f"{base} {number}"
