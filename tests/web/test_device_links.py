"""Device links: step-up to create, URL + QR + six-word passphrase, the
`GET /auth/{passphrase}` hop, validation, adding a passkey for the link's user, single use, expiry,
and no crossing between users or ceremonies."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from appkit import app_client
from flows import ORIGIN, Passkeys, unique_name
from passgate.services import registration as registration_service
from passgate.services import users
from passgate.services.context import Context
from passgate.store.models import device_links
from passgate.store.models import sessions as session_table
from seckit import write_lock_seen
from softkey import SoftAuthenticator

PASSPHRASE = re.compile(r"^\w+(\.\w+){2,}$")


@pytest.fixture
async def other_browser(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    """A second device: same app, its own cookie jar."""
    async with app_client(ctx) as http:
        yield http


async def _signed_up(client: httpx.AsyncClient) -> tuple[Passkeys, str]:
    browser = Passkeys(client)
    name = unique_name()
    answer = await browser.register(name)
    assert answer.status_code == 200, answer.text
    return browser, name


async def _new_link(browser: Passkeys) -> dict[str, Any]:
    answer = await browser.post("/auth/create-device-link")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _age_session(ctx: Context, session_id: str, seconds: float) -> None:
    statement = update(session_table).where(session_table.c.id == session_id)
    ctx.db.transact(lambda c: c.execute(statement.values(auth_time=time.time() - seconds)))


def _expire_links(ctx: Context) -> None:
    ctx.db.transact(lambda c: c.execute(update(device_links).values(expires_at=time.time() - 1)))


async def _add_device(
    device: httpx.AsyncClient, passphrase: str, authenticator: SoftAuthenticator
) -> httpx.Response:
    begin = await device.post("/auth/device/begin", json={"token": passphrase})
    assert begin.status_code == 200, begin.text
    return await device.post("/auth/device/finish", json=authenticator.create(begin.json(), origin=ORIGIN))


async def test_create_device_link_shape(client: httpx.AsyncClient, ctx: Context) -> None:
    browser, _ = await _signed_up(client)
    link = await _new_link(browser)
    assert PASSPHRASE.match(link["passphrase"])
    assert link["addition_link"] == f"{ctx.settings.public_url}/auth/{link['passphrase']}"
    assert link["qr_svg"].lstrip().startswith("<svg")
    assert link["expires_in_hours"] == 24
    assert abs(link["expires_at"] - (time.time() + 24 * 3600)) < 60
    assert link["passphrase"] != (await _new_link(browser))["passphrase"]


async def test_create_device_link_needs_a_recent_passkey_check(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    browser, name = await _signed_up(client)
    session_id = (await browser.me()).json()["session_id"]
    _age_session(ctx, session_id, ctx.settings.stepup_max_age + 5)
    stale = await browser.post("/auth/create-device-link")
    assert stale.status_code == 401 and stale.json()["code"] == "reauth_required"
    assert (await browser.login(name)).status_code == 200  # the re-check
    assert (await browser.post("/auth/create-device-link")).status_code == 200
    assert (await client.post("/auth/logout")).status_code == 200
    assert (await browser.post("/auth/create-device-link")).status_code == 401


async def test_open_link_validate_and_add_this_device(
    client: httpx.AsyncClient, other_browser: httpx.AsyncClient, ctx: Context
) -> None:
    laptop, name = await _signed_up(client)
    user_id = (await laptop.me()).json()["user_id"]
    link = await _new_link(laptop)
    passphrase = link["passphrase"]

    opened = await other_browser.get(f"/auth/{passphrase}")
    assert opened.status_code == 303
    target = opened.headers["location"]
    assert target.startswith("/") and "invalid" not in target  # the device page, on this site
    assert passphrase not in target and opened.headers["referrer-policy"] == "no-referrer"
    cookie = opened.headers["set-cookie"]
    assert cookie.startswith(f"passgate-device={passphrase};")
    assert "httponly" in cookie.lower() and "path=/auth" in cookie.lower()

    # The cookie stands in for the passphrase.
    valid = await other_browser.post("/auth/validate-device-token")
    assert valid.status_code == 200, valid.text
    assert valid.json()["user_name"] == name and valid.json()["valid"] is True
    assert (
        await other_browser.post("/auth/validate-device-token", json={"token": passphrase})
    ).status_code == 200

    phone = SoftAuthenticator("EdDSA")
    begin = await other_browser.post("/auth/device/begin")
    assert begin.status_code == 200, begin.text
    options = begin.json()["publicKey"]
    assert options["user"]["name"] == name
    assert [item["id"] for item in options["excludeCredentials"]] == [
        laptop.authenticator.last_credential.id_b64
    ]
    finish = await other_browser.post("/auth/device/finish", json=phone.create(begin.json(), origin=ORIGIN))
    assert finish.status_code == 200, finish.text
    assert finish.json()["user_id"] == user_id
    me = (await other_browser.get("/auth/me")).json()
    assert me["user_id"] == user_id  # this device is now signed in as the link's user
    assert me["session_id"] != (await laptop.me()).json()["session_id"]
    credentials = (await laptop.post("/auth/user-info")).json()["credentials"]
    assert {c["credential_id"] for c in credentials} == {
        laptop.authenticator.last_credential.id_b64,
        phone.last_credential.id_b64,
    }

    # Single use: every way of using the link again fails.
    for path, body in (
        ("/auth/validate-device-token", {"token": passphrase}),
        ("/auth/device/begin", {"token": passphrase}),
    ):
        again = await other_browser.post(path, json=body)
        assert again.status_code == 400 and again.json()["code"] == "link_invalid"
    reopened = await other_browser.get(f"/auth/{passphrase}")
    assert reopened.status_code == 303 and reopened.headers["location"] == target.replace("=1", "=invalid")

    # The new passkey signs in on its own.
    await other_browser.post("/auth/logout")
    assert (await Passkeys(other_browser, phone).login()).status_code == 200
    assert (await other_browser.get("/auth/me")).json()["user_id"] == user_id


async def test_expired_link_is_invalid_everywhere(
    client: httpx.AsyncClient, other_browser: httpx.AsyncClient, ctx: Context
) -> None:
    laptop, _ = await _signed_up(client)
    passphrase = (await _new_link(laptop))["passphrase"]
    begin = await other_browser.post("/auth/device/begin", json={"token": passphrase})
    assert begin.status_code == 200
    _expire_links(ctx)
    for path in ("/auth/validate-device-token", "/auth/device/begin"):
        answer = await other_browser.post(path, json={"token": passphrase})
        assert answer.status_code == 400 and answer.json()["code"] == "link_invalid"
    # A ceremony begun before the link expired cannot finish after.
    late = await other_browser.post(
        "/auth/device/finish", json=SoftAuthenticator().create(begin.json(), origin=ORIGIN)
    )
    assert late.status_code == 400 and late.json()["code"] == "link_invalid"
    assert (await other_browser.get("/auth/me")).status_code == 401
    assert len((await laptop.post("/auth/user-info")).json()["credentials"]) == 1


async def test_two_ceremonies_on_one_link_only_the_first_finishes(
    client: httpx.AsyncClient, other_browser: httpx.AsyncClient, ctx: Context
) -> None:
    laptop, _ = await _signed_up(client)
    passphrase = (await _new_link(laptop))["passphrase"]
    async with app_client(ctx) as third_browser:
        first = await other_browser.post("/auth/device/begin", json={"token": passphrase})
        second = await third_browser.post("/auth/device/begin", json={"token": passphrase})
        assert first.status_code == second.status_code == 200
        done = await other_browser.post(
            "/auth/device/finish", json=SoftAuthenticator().create(first.json(), origin=ORIGIN)
        )
        assert done.status_code == 200
        late = await third_browser.post(
            "/auth/device/finish", json=SoftAuthenticator().create(second.json(), origin=ORIGIN)
        )
        assert late.status_code == 400 and late.json()["code"] == "link_invalid"
        assert (await third_browser.get("/auth/me")).status_code == 401
    assert len((await laptop.post("/auth/user-info")).json()["credentials"]) == 2


async def test_a_link_adds_only_to_its_own_user(
    client: httpx.AsyncClient, other_browser: httpx.AsyncClient, ctx: Context
) -> None:
    alice, _ = await _signed_up(client)
    alice_id = (await alice.me()).json()["user_id"]
    bob, _ = await _signed_up(other_browser)
    bob_id = (await bob.me()).json()["user_id"]
    passphrase = (await _new_link(alice))["passphrase"]

    # Bob's browser (signed in as Bob) uses Alice's link: the passkey goes to Alice, never to Bob.
    key = SoftAuthenticator()
    added = await _add_device(other_browser, passphrase, key)
    assert added.status_code == 200 and added.json()["user_id"] == alice_id
    assert (await other_browser.get("/auth/me")).json()["user_id"] == alice_id
    assert len((await alice.post("/auth/user-info")).json()["credentials"]) == 2
    bob_again = Passkeys(other_browser, bob.authenticator)
    await other_browser.post("/auth/logout")
    assert (await bob_again.login()).status_code == 200
    assert len((await bob_again.post("/auth/user-info")).json()["credentials"]) == 1
    await other_browser.post("/auth/logout")
    signed_in = await Passkeys(other_browser, key).login()
    assert signed_in.json()["user_id"] == alice_id != bob_id


async def test_device_and_account_ceremonies_do_not_cross(client: httpx.AsyncClient, ctx: Context) -> None:
    """A device-link challenge cannot finish as "add a passkey" or sign-up, nor the other way round."""
    alice, _ = await _signed_up(client)
    passphrase = (await _new_link(alice))["passphrase"]
    begin = await client.post("/auth/device/begin", json={"token": passphrase})
    credential = SoftAuthenticator().create(begin.json(), origin=ORIGIN)
    for path in ("/auth/credentials/finish", "/auth/register/finish"):
        answer = await client.post(path, json=credential)
        assert answer.status_code == 400, (path, answer.text)
    # The challenge was burnt by the failed attempt; the link itself still works.
    assert (await client.post("/auth/device/finish", json=credential)).status_code == 400
    assert (await client.post("/auth/validate-device-token", json={"token": passphrase})).status_code == 200

    add = await client.post("/auth/credentials/begin")
    wrong = await client.post(
        "/auth/device/finish", json=SoftAuthenticator().create(add.json(), origin=ORIGIN)
    )
    assert wrong.status_code == 400
    assert len((await alice.post("/auth/user-info")).json()["credentials"]) == 1


async def test_admin_recovery_link_for_a_user_without_passkeys(
    other_browser: httpx.AsyncClient, ctx: Context
) -> None:
    name = unique_name()
    users.add(ctx, name)
    link = users.recovery_link(ctx, name)
    assert link.url.endswith(f"/auth/{link.passphrase}")
    added = await _add_device(other_browser, link.passphrase, SoftAuthenticator())
    assert added.status_code == 200, added.text
    assert (await other_browser.get("/auth/me")).json()["user_name"] == name


async def test_disabled_user_link_is_invalid(other_browser: httpx.AsyncClient, ctx: Context) -> None:
    name = unique_name()
    users.add(ctx, name)
    link = users.recovery_link(ctx, name)
    users.set_disabled(ctx, name, True)
    answer = await other_browser.post("/auth/validate-device-token", json={"token": link.passphrase})
    assert answer.status_code == 400 and answer.json()["code"] == "link_invalid"


@pytest.mark.parametrize("token", ["nope", "a.b", "x" * 300, ""])
async def test_malformed_passphrases(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.post("/auth/validate-device-token", json={"token": token})
    assert answer.status_code == 400
    assert answer.json()["code"] in {"link_invalid", "token_required", "invalid_request"}


@pytest.mark.parametrize("surface", ["account page", "device link"])
async def test_new_passkey_verified_with_no_write_lock(
    client: httpx.AsyncClient,
    other_browser: httpx.AsyncClient,
    ctx: Context,
    monkeypatch: pytest.MonkeyPatch,
    surface: str,
) -> None:
    """Adding a passkey verifies its attestation with no transaction open: on SQLite, whose one write
    lock serves the whole database, no other worker waits for the check (services/ceremonies.py)."""
    if not ctx.db.is_sqlite:
        pytest.skip("SQLite's database-wide write lock")
    browser, _ = await _signed_up(client)
    # both surfaces check the new passkey with `registration.verify_new_passkey`
    taken = write_lock_seen(monkeypatch, registration_service, "finish_registration", ctx)
    if surface == "account page":
        answer = await browser.add_passkey(SoftAuthenticator())
    else:
        passphrase = (await _new_link(browser))["passphrase"]
        answer = await _add_device(other_browser, passphrase, SoftAuthenticator())
    assert answer.status_code == 200, answer.text
    assert taken == [True]
