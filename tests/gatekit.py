"""Small helpers for the forward-auth tests, so they need not import the root `conftest` by name."""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from flows import ORIGIN, Passkeys, unique_name
from passgate.config import Settings, load_settings
from passgate.services.context import Context
from passgate.web.app import create_app

TEST_KEY = "g" * 48


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": data_dir, "secret_keys": [TEST_KEY], "rate_limit": "10000/minute"}
    values.update(overrides)
    return load_settings(**values)


def app_client(ctx: Context) -> httpx.AsyncClient:
    """httpx over ASGI, from 127.0.0.1, with the default origin (as a browser page would send)."""
    transport = httpx.ASGITransport(app=create_app(ctx.settings, ctx), client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers={"origin": ORIGIN})


# --- the forward-auth gate in process

APP = {"x-forwarded-proto": "http", "x-forwarded-host": "localhost:9000", "x-forwarded-uri": "/app/page?x=1"}
RULES = {
    "admin": {"groups": ["admins"]},
    "wiki-admin": {"host": "localhost", "path": "/admin", "groups": ["admins"]},
    "fresh": {"max_age": 60},
}


def gate_ctx(tmp_path: Path, **overrides: Any) -> Iterator[Context]:
    values: dict[str, Any] = {
        "trusted_proxies": ["127.0.0.1/32"],
        "revocation_window": 0,
        "forward_auth_rules": RULES,
    }
    values.update(overrides)
    context = Context.build(make_settings(tmp_path, **values))
    context.db.migrate()
    yield context
    context.db.dispose()


async def gate(
    http: httpx.AsyncClient, query: str = "", headers: dict[str, str] | None = None
) -> httpx.Response:
    return await http.get("/auth/forward-auth" + query, headers={**APP, **(headers or {})})


async def signed_in(http: httpx.AsyncClient, user_name: str | None = None) -> tuple[Passkeys, str]:
    passkeys = Passkeys(http)
    name = user_name or unique_name()
    response = await passkeys.register(name)
    assert response.status_code == 200, response.text
    return passkeys, name


# Return URLs that must never be accepted (ASVS 3.7.2), for Passgate at https://auth.example.com with
# PASSGATE_COOKIE_DOMAIN=example.com and PASSGATE_RETURN_HOSTS="partner.org,*.tools.net".
TRICKS = [
    "//evil.com",
    "///evil.com",
    "////evil.com/x",
    "https:evil.com",
    "https:/evil.com",
    "https:\\\\evil.com",
    "/\\evil.com",
    "/\\\\evil.com",
    "\\\\evil.com",
    "/\t/evil.com",
    "/\\\tevil.com",
    "https://evil.com",
    "https://evil.com/https://app.example.com",
    "https://app.example.com.evil.com/",
    "https://example.com.evil.com",
    "https://evilexample.com/",
    "https://app.example.com@evil.com/",
    "https://evil.com@app.example.com/",
    "https://user:pass@app.example.com/",
    "https://evil.com\\@app.example.com/",
    "https://evil.com#@app.example.com/",
    "https://evil.com?@app.example.com/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "/%2F%2Fevil.com",
    "/%2f%2fevil.com",
    "/%5Cevil.com",
    "/%5c%5cevil.com",
    "/%09/evil.com",
    "/%252F%252Fevil.com",
    "https://app.example.com/%2F%2Fevil.com",
    "https://%65vil.com/",
    " https://app.example.com/",
    "https://app.example.com /",
    "https://app.example.com/\n.evil.com",
    "https://app.example.com\r\nLocation: https://evil.com",
    "https://app.example.com.",
    "https://app..example.com/",
    "https://-app.example.com/",
    "https://app.example.com:99999/",
    "https://app.example.com:/",
    "https://app.ex\u0430mple.com/",  # Cyrillic a
    "https://evil\u3002com/",  # ideographic full stop
    "\uff0f\uff0fevil.com",  # fullwidth solidus
    "https://[::1]/",
    "https://127.0.0.1/",
    "http://app.example.com/",  # downgrade from an https deployment
    "ftp://app.example.com/",
    "https://partner.org.evil.com/",
    "https://tools.net/",  # `*.tools.net` covers subdomains only
    "https://app.example.com/%zz",
    "",
    "x" * 5000,
]


# --- path tricks against a rule on `/admin` (the unit tests and the real proxies use the same table)

# Raw request targets that some app reads as under `/admin` (`app_routes_to` says which reading does);
# each must meet the `/admin` rule at the gate.
PATH_ROUTED = [
    "/admin",
    "/admin/users",
    "/Admin/users",
    "/ADMIN",
    # dot-segments leaving the prefix (the proxy passes them on raw; a raw-prefix app stays in /admin)
    "/admin/../public",
    "/admin/./../public",
    "/admin/%2e%2e/public",
    "/admin/%2E%2E/public",
    "/admin/.%2e/public",
    "/admin/%2e./public",
    "/admin/%252e%252e/public",
    "/admin/%25252e%25252e/public",
    "/admin/..%2fpublic",
    "/admin%2f..%2fpublic",
    "/admin%2F%2E%2E%2Fpublic",
    "/admin/..;/public",
    "/admin/..%3b/public",
    "/admin\\..\\public",
    "/admin%5c..%5cpublic",
    "/admin/%ef%bc%8e%ef%bc%8e/public",  # fullwidth full stops
    "/admin/..%00/public",
    # dot-segments entering the prefix (an app that resolves them lands in /admin)
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%252e%252e/admin",
    "/public/..%2fadmin",
    "/public%2f..%2fadmin",
    "/public/..;/admin",
    "/public\\..\\admin",
    "/public/%2e%2e%5cadmin",
    "/public/%ef%bc%8e%ef%bc%8e/admin",
    "/./admin",
    "/%2e/admin",
    # separators and parameters
    "//admin",
    "///admin/users",
    "/%2fadmin",
    "/%2Fadmin/users",
    "/%252fadmin",
    "/\\admin",
    "/%5cadmin",
    "/admin;x=1",
    "/admin;jsessionid=0/users",
    "/admin%3b/users",
    "/admin%3f/users",
    "/admin%23/users",
    # encodings, case and compatibility forms
    "/%61dmin",
    "/%41DMIN/users",
    "/%2561dmin",
    "/%252561dmin",
    "/admin./users",
    "/admin%2e/users",
    "/admin%20/users",
    "/admin%20./users",
    "/adm%c4%b1n",  # dotless i (U+0131) upper-cases to "I"
    "/ADM%C4%B0N",  # dotted capital I: "i" in a Turkish lower-casing
    "/%ef%bd%81dmin",  # fullwidth a
    "/%EF%BC%A1DMIN",  # fullwidth A
    "/admin%ef%bc%8fusers",  # fullwidth solidus
    "/%ef%bc%8fadmin",
    "/admin%e2%80%8b/users",  # zero-width space, dropped by some
    "/adm%c2%adin",  # soft hyphen, dropped by some
]
# Targets no reading can be trusted for: ambiguous, so they meet every path rule.
PATH_UNREADABLE = ["/%ff/admin", "/x/%c0%ae%c0%ae/admin", "/%25252525252e/admin", "/public%00"]
PATH_TRICKS = PATH_ROUTED + PATH_UNREADABLE
# Targets that stay outside `/admin` however an app reads them.
PATH_CLEAR = [
    "/",
    "/public",
    "/public/",
    "/public?x=/admin",
    "/public?/../admin",
    "/public/admin",
    "/administrator",
    "/adminx/users",
    "/x/admin",
    "/%2561",
    "/public%3Fx=/admin",
]


def app_routes_to(prefix: str, target: str) -> bool:
    """Whether some app would run its `prefix` handler for this raw target: an independent model of the
    ways apps read paths — raw or percent-decoded up to three times; then, each optionally and in this
    order: `\\` as `/` (IIS), NFKC (fullwidth forms), format characters dropped, `;params` dropped
    (Tomcat), trailing dots and spaces dropped (Windows), slashes collapsed, the path cut at a decoded
    `?`/`#`, dot-segments resolved; compared upper-cased, lower-cased or lower-cased the Turkish way."""

    def trailing(text: str) -> str:
        return "/".join(part.rstrip(". ") if part.strip(". ") else part for part in text.split("/"))

    steps = [
        lambda text: text.replace("\\", "/"),
        lambda text: unicodedata.normalize("NFKC", text),
        lambda text: "".join(char for char in text if unicodedata.category(char) != "Cf"),
        lambda text: re.sub(r";[^/]*", "", text),
        trailing,
        lambda text: re.sub(r"/+", "/", text),
        lambda text: re.split(r"[?#]", text, maxsplit=1)[0],
        lambda text: re.sub(r"/+", "/", posixpath.normpath("/" + text)),
    ]
    readings = {target.split("?", 1)[0]}
    for _ in range(3):
        readings |= {unquote(reading, errors="replace") for reading in readings}
    for step in steps:
        readings |= {step(reading) for reading in readings}
    for reading in readings:
        for case in (str.upper, str.lower, lambda text: text.replace("İ", "i").lower()):
            folded, wanted = case(reading), case(prefix)
            if folded == wanted or folded.startswith(wanted + "/"):
                return True
    return False
