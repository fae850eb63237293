"""Session signing keys rotate: the first key signs, every listed key verifies, a retired key verifies
nothing. Each step is a new process's view: a new Context and app over the same database."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx

from appkit import app_client, make_settings
from flows import Passkeys, unique_name
from passgate.services.context import Context
from passgate.services.tokens import key_id

KEY_A = "a" * 40
KEY_B = "b" * 40


def _header(token: str) -> dict[str, str]:
    encoded = token.split(".")[0]
    header: dict[str, str] = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    return header


def _context(tmp_path: Path, keys: list[str]) -> Context:
    ctx = Context.build(make_settings(tmp_path, secret_keys=keys))
    ctx.db.migrate()
    return ctx


async def _me(ctx: Context, token: str) -> httpx.Response:
    async with app_client(ctx) as http:
        return await http.get("/auth/me", headers={"cookie": f"passgate={token}"})


async def test_rotation_keeps_old_tokens_until_the_key_is_retired(tmp_path: Path) -> None:
    before = _context(tmp_path, [KEY_A])
    async with app_client(before) as http:
        browser = Passkeys(http)
        name = unique_name()
        assert (await browser.register(name)).status_code == 200
        old_token = http.cookies["passgate"]
    before.db.dispose()
    assert _header(old_token) == {"typ": "JWT", "alg": "HS256", "kid": key_id(KEY_A.encode())}

    rotated = _context(tmp_path, [KEY_B, KEY_A])
    try:
        assert (await _me(rotated, old_token)).json()["user_name"] == name  # A still verifies
        async with app_client(rotated) as http:
            browser = Passkeys(http, browser.authenticator)
            assert (await browser.login(name)).status_code == 200
            new_token = http.cookies["passgate"]
        assert _header(new_token)["kid"] == key_id(KEY_B.encode())  # B signs
    finally:
        rotated.db.dispose()

    retired = _context(tmp_path, [KEY_B])
    try:
        refused = await _me(retired, old_token)
        assert refused.status_code == 401 and refused.json()["code"] == "session_invalid"
        assert (await _me(retired, new_token)).json()["user_name"] == name
    finally:
        retired.db.dispose()

    # A token B signed means nothing to a server that only knows A.
    only_a = _context(tmp_path, [KEY_A])
    try:
        assert (await _me(only_a, new_token)).status_code == 401
        assert (await _me(only_a, old_token)).status_code == 200
    finally:
        only_a.db.dispose()


def test_key_ids_differ_and_are_stable() -> None:
    assert key_id(KEY_A.encode()) == key_id(KEY_A.encode())
    assert key_id(KEY_A.encode()) != key_id(KEY_B.encode())
    assert KEY_A not in key_id(KEY_A.encode())


async def test_a_token_with_a_forged_kid_is_refused(tmp_path: Path) -> None:
    ctx = _context(tmp_path, [KEY_B, KEY_A])
    try:
        async with app_client(ctx) as http:
            assert (await Passkeys(http).register(unique_name())).status_code == 200
            token = http.cookies["passgate"]
        header, payload, signature = token.split(".")
        swapped = dict(_header(token), kid=key_id(KEY_A.encode()))
        encoded = base64.urlsafe_b64encode(json.dumps(swapped).encode()).rstrip(b"=").decode()
        assert (await _me(ctx, f"{encoded}.{payload}.{signature}")).status_code == 401
        unsigned = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        assert (await _me(ctx, f"{unsigned}.{payload}.")).status_code == 401
        assert (await _me(ctx, f"{header}.{payload}.{signature}")).status_code == 200
    finally:
        ctx.db.dispose()
