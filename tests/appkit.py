"""`make_settings` and `app_client`: the one place tests build settings and an in-process browser
(importable by name; importing `conftest` is ambiguous once sub-folders have their own); and
`statements`, what SQLite runs on the event loop's connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from flows import ORIGIN
from passgate.config import Settings, load_settings
from passgate.services.context import Context
from passgate.store.database import Database
from passgate.web.app import create_app

TEST_KEY = "k" * 48  # every test context signs with it, so contexts verify each other's tokens


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "secret_keys": [TEST_KEY],
        "rate_limit": "10000/minute",
        "port": 8000,
    }
    values.update(overrides)
    return load_settings(**values)


def app_client(ctx: Context) -> httpx.AsyncClient:
    """A browser: httpx over ASGI with its own cookie jar, sending the default origin."""
    app = create_app(ctx.settings, ctx)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=ORIGIN, headers={"origin": ORIGIN}
    )


def statements(database: Database) -> list[str]:
    """The statements the event loop's SQLite connection runs from now on (opened by a first unit)."""
    seen: list[str] = []
    connection = database._loop_connection
    assert connection is not None
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    driver.set_trace_callback(seen.append)
    return seen
