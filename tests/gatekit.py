"""Small helpers for the forward-auth tests, so they need not import the root `conftest` by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# Return URLs that must never be accepted (SECURITY FA-06), for Passgate at https://auth.example.com with
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
