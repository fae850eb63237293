"""The gate's memory: no database round trip within the revocation window, and every way a session
ends (logout, logout-all, another device, a disabled user) seen within it (OWASP ASVS 5.0 V7.4.1)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

from flows import Passkeys
from gatekit import app_client, gate, gate_ctx, signed_in
from passgate.services import users
from passgate.services.context import Context


@pytest.fixture
def windowed(tmp_path: Path) -> Iterator[Context]:
    yield from gate_ctx(tmp_path, revocation_window=1)


async def _blocked_within_window(http: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        if (await gate(http)).status_code == 401:
            return
        await asyncio.sleep(0.1)
    pytest.fail("the gate still allowed the session after the revocation window")


async def test_no_database_round_trip_within_the_window(windowed: Context) -> None:
    async with app_client(windowed) as http:
        await signed_in(http)
        assert (await gate(http)).status_code == 204
        statements: list[str] = []
        event.listen(windowed.db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        for _ in range(20):
            assert (await gate(http, "?max_age=300")).status_code == 204
        assert statements == []
        await asyncio.sleep(1.05)
        assert (await gate(http)).status_code == 204
        assert statements, "the session must be read again after the window"


@pytest.mark.parametrize("how", ["logout", "logout-all", "other device", "disabled"])
async def test_revocation_is_seen_within_the_window(windowed: Context, how: str) -> None:
    async with app_client(windowed) as http, app_client(windowed) as other:
        passkeys, name = await signed_in(http)
        assert (await gate(http)).status_code == 204
        cookie = http.cookies[windowed.settings.session_cookie_name]
        if how == "logout":
            assert (await http.post("/auth/logout", json={})).status_code == 200
        elif how == "logout-all":
            assert (await http.post("/auth/logout-all", json={})).status_code == 200
        elif how == "other device":
            session_id = (await http.get("/auth/me")).json()["session_id"]
            other_keys = Passkeys(other, authenticator=passkeys.authenticator)
            assert (await other_keys.login()).status_code == 200
            assert (
                await other.post("/auth/delete-session", json={"session_id": session_id})
            ).status_code == 200
        else:
            await asyncio.to_thread(users.set_disabled, windowed, name, True)
        http.cookies.clear()
        http.cookies.set(windowed.settings.session_cookie_name, cookie)  # the old cookie, replayed
        await _blocked_within_window(http)
