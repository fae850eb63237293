"""Decoys that look real: a named `login/begin` for a name with no account answers with an allow list
shaped like the real accounts' here (how many passkeys, id lengths, transports), stable per name and
across `passgate keys rotate`, and still known to the server as a decoy when replayed."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appkit import TEST_KEY, app_client, make_settings
from flows import ORIGIN, Passkeys, fresh, unique_name
from passgate.ceremony.encoding import b64url_decode, b64url_encode
from passgate.services.context import Context

Shape = tuple[tuple[int, tuple[str, ...]], ...]
SIGN_IN_FAILED = {"error": "Sign-in failed. Try again or use another passkey.", "code": "sign_in_failed"}
# The people here: two phones with synced passkeys, a security key, someone with both, a Windows laptop,
# and a key that reports no transports. Nobody has the one 32-byte hybrid passkey decoys used to show.
ACCOUNTS: list[list[dict[str, Any]]] = [
    [{"credential_id_length": 20, "transports": ["hybrid", "internal"]}],
    [{"credential_id_length": 20, "transports": ["hybrid", "internal"]}],
    [{"credential_id_length": 64, "transports": ["nfc", "usb"]}],
    [
        {"credential_id_length": 16, "transports": ["hybrid", "internal"]},
        {"credential_id_length": 64, "transports": ["usb"]},
    ],
    [{"credential_id_length": 32, "transports": ["internal"]}],
    [{"credential_id_length": 48, "transports": None}],
]
UNKNOWN = 300


@pytest.fixture
def decoy_ctx(tmp_path: Path) -> Iterator[Context]:
    context = Context.build(make_settings(tmp_path))
    context.db.migrate()
    yield context
    context.db.dispose()


@pytest.fixture
async def real_names(decoy_ctx: Context) -> AsyncIterator[list[str]]:
    created = []
    async with app_client(decoy_ctx) as http:
        for passkeys in ACCOUNTS:
            browser, name = Passkeys(http, fresh()), unique_name("real")
            assert (await browser.register(name, **passkeys[0])).status_code == 200
            for knobs in passkeys[1:]:
                assert (await browser.add_passkey(fresh(), **knobs)).status_code == 200
            await browser.post("/auth/logout")
            created.append(name)
    yield created


async def allow_list(http: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    begin = await http.post("/auth/login/begin", json={"user_name": name})
    assert begin.status_code == 200, begin.text
    allowed: list[dict[str, Any]] = begin.json()["publicKey"]["allowCredentials"]
    return allowed


def shape(allowed: list[dict[str, Any]]) -> Shape:
    return tuple((len(b64url_decode(item["id"])), tuple(item.get("transports") or ())) for item in allowed)


async def test_unknown_names_look_like_the_accounts_here(decoy_ctx: Context, real_names: list[str]) -> None:
    async with app_client(decoy_ctx) as http:
        real = Counter([shape(await allow_list(http, name)) for name in real_names])
        members = {frozenset(item) for name in real_names for item in await allow_list(http, name)}
        unknown = [unique_name("nobody") for _ in range(UNKNOWN)]
        decoys = {name: await allow_list(http, name) for name in unknown}
        drawn = Counter(shape(allowed) for allowed in decoys.values())

        # Structurally: every decoy is a shape some real account has, with the same JSON members.
        assert set(drawn) <= set(real), set(drawn) - set(real)
        assert {frozenset(item) for allowed in decoys.values() for item in allowed} <= members
        # Statistically: each real shape is drawn about as often as accounts have it (4 sigma).
        for each, count in real.items():
            p = count / real.total()
            expected, sigma = UNKNOWN * p, math.sqrt(UNKNOWN * p * (1 - p))
            assert abs(drawn[each] - expected) <= 4 * sigma, (each, drawn[each], expected)
        # Stable: the same name (in any spelling) gets the same answer; ids are not shared between names.
        for name in unknown[:20]:
            assert await allow_list(http, name) == decoys[name]
            assert await allow_list(http, name.upper()) == decoys[name]
        ids = [item["id"] for allowed in decoys.values() for item in allowed]
        assert len(ids) == len(set(ids))


async def test_decoys_survive_key_rotation(decoy_ctx: Context, real_names: list[str], tmp_path: Path) -> None:
    names = [unique_name("nobody") for _ in range(5)]
    async with app_client(decoy_ctx) as http:
        before = {name: await allow_list(http, name) for name in names}

    # `passgate keys rotate`: a new key signs, the old one still verifies. Decoys stay as they were.
    rotated = Context.build(make_settings(tmp_path, secret_keys=["n" * 48, TEST_KEY]))
    # A later key list where the key that made these decoys is no longer the oldest: still recognised.
    reordered = Context.build(make_settings(tmp_path, secret_keys=[TEST_KEY, "o" * 48]))
    try:
        async with app_client(rotated) as http:
            assert {name: await allow_list(http, name) for name in names} == before
        for ctx in (rotated, reordered):
            async with app_client(ctx) as http:
                for name in names[:2]:
                    replayed = await replay(Passkeys(http), b64url_decode(before[name][0]["id"]))
                    assert replayed.json() == SIGN_IN_FAILED  # not "unknown_credential": a decoy
                stray_id = bytes(64)
                unknown = await replay(Passkeys(http), stray_id)
                assert unknown.json() == {**SIGN_IN_FAILED, "unknown_credential": b64url_encode(stray_id)}
    finally:
        rotated.db.dispose()
        reordered.db.dispose()


async def replay(passkeys: Passkeys, raw_id: bytes) -> httpx.Response:
    """A usernameless sign-in answered by a passkey that names `raw_id` (one this server never stored)."""
    begin = await passkeys.post("/auth/register/begin", {"user_name": unique_name("stray")})
    stray = fresh()
    stray.create(begin.json(), origin=ORIGIN)
    options = await passkeys.login_options()
    assertion = stray.get(options, origin=ORIGIN, raw_id_override=raw_id, id_override=b64url_encode(raw_id))
    return await passkeys.post("/auth/login/finish", assertion)


async def test_decoys_on_both_databases(tmp_path: Path, database_url: str) -> None:
    ctx = Context.build(make_settings(tmp_path, database_url=database_url))
    ctx.db.migrate()
    try:
        async with app_client(ctx) as http:
            name = unique_name("real")
            knobs = {"credential_id_length": 24, "transports": ["ble", "usb"]}
            assert (await Passkeys(http, fresh()).register(name, **knobs)).status_code == 200
            await http.post("/auth/logout")
            real = shape(await allow_list(http, name))
            decoy = await allow_list(http, unique_name("nobody"))
            # PostgreSQL's database is shared by the run: the decoy is some account's shape there.
            assert real == ((24, ("ble", "usb")),) and len(decoy) >= 1
            if database_url.startswith("sqlite"):
                assert shape(decoy) == real
    finally:
        ctx.db.dispose()
