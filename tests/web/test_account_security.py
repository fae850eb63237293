"""A stolen or idle cookie is not an account: every action that changes who can get in needs a fresh
passkey check (one table, every face), and whatever ends access ends it everywhere at once."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from sqlalchemy import update
from starlette.exceptions import StarletteDeprecationWarning

from appkit import app_client
from flows import ORIGIN, Passkeys, fresh, unique_name
from passgate.config import Settings
from passgate.services import device_links, users
from passgate.services.context import Context
from passgate.services.stepup import POLICY, Need
from passgate.store import audit
from passgate.store.models import sessions as session_table
from passgate.web.app import create_app
from softkey import SoftAuthenticator

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

WS = "ws://localhost:8000/auth/ws"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
FAKE = "AAAAAAAAAAAAAAAAAAAAAA"
FAKE_CREDENTIAL = {
    "id": FAKE,
    "rawId": FAKE,
    "type": "public-key",
    "response": {"clientDataJSON": FAKE, "attestationObject": FAKE},
}
# A schema-valid body for every route whose row needs a recent check: the check must come first.
SAMPLE_BODIES: dict[str, dict[str, Any]] = {
    "/auth/credentials/begin": {},
    "/auth/credentials/finish": FAKE_CREDENTIAL,
    "/auth/rename-credential": {"credential_id": FAKE, "name": "x"},
    "/auth/delete-credential": {"credential_id": FAKE},
    "/auth/clear-credential-flag": {"credential_id": FAKE},
    "/auth/create-device-link": {},
    "/auth/revoke-device-link": {"link_id": "x"},
    "/auth/delete-session": {"session_id": "someone-elses"},
    "/auth/logout-all": {},
}


@pytest.fixture
def browser(settings: Settings, ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx), base_url=ORIGIN, headers={"origin": ORIGIN}) as client:
        yield client


@pytest.fixture
async def second(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser on the same server."""
    async with app_client(ctx) as http:
        yield http


def _stale(ctx: Context, session_id: str) -> None:
    """The session's last passkey check is older than step-up allows (an idle or stolen cookie)."""
    old = time.time() - ctx.settings.stepup_max_age - 5
    statement = update(session_table).where(session_table.c.id == session_id).values(auth_time=old)
    ctx.db.transact(lambda c: c.execute(statement))


async def _signed_up(client: httpx.AsyncClient) -> tuple[Passkeys, str]:
    browser = Passkeys(client)
    assert (await browser.register()).status_code == 200
    return browser, (await browser.me()).json()["session_id"]


def _recheck_failed(response: httpx.Response) -> bool:
    return response.status_code == 401 and response.json()["code"] == "reauth_required"


# ------------------------------------------------------------------ one table, every route


def _flat(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        yield from _flat(included.routes) if included is not None else [route]


def _routes(ctx: Context) -> list[tuple[str, set[str], Any]]:
    app = create_app(ctx.settings, ctx)
    found: list[tuple[str, set[str], Any]] = []
    for route in _flat(app.routes):
        if isinstance(route, APIRoute) and route.methods & STATE_CHANGING:
            found.append((route.path, set(route.methods), route.endpoint))
        elif isinstance(route, APIWebSocketRoute):
            found.append((route.path, {"WEBSOCKET"}, route.endpoint))
    return found


def test_every_state_changing_route_is_a_row_of_the_step_up_table(ctx: Context) -> None:
    routes = _routes(ctx)
    assert len(routes) >= 20
    missing = [
        path for path, _, endpoint in routes if getattr(endpoint, "passgate_action", None) not in POLICY
    ]
    assert missing == [], f"state-changing routes with no row in services/stepup.py POLICY: {missing}"


async def test_every_route_that_needs_a_recent_check_refuses_a_stale_session(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    browser, session_id = await _signed_up(client)
    _stale(ctx, session_id)
    guarded = [
        path
        for path, methods, endpoint in _routes(ctx)
        if POLICY[endpoint.passgate_action] is Need.RECENT_CHECK and "WEBSOCKET" not in methods
    ]
    assert set(guarded) == set(SAMPLE_BODIES), "add a sample body for each new guarded route"
    for path in guarded:
        assert _recheck_failed(await browser.post(path, SAMPLE_BODIES[path])), path
    me = await browser.me()
    assert me.status_code == 200  # refusing a step-up signs nobody out
    events = ctx.db.transact(lambda c: audit.for_user(c, me.json()["user_id"]))
    demanded = [event["action"] for event in events if event["kind"] == "stepup_required"]
    assert len(demanded) == len(guarded)


def test_the_openapi_document_says_what_each_guarded_route_needs(ctx: Context) -> None:
    paths = create_app(ctx.settings, ctx).openapi()["paths"]
    for path in SAMPLE_BODIES:
        assert "passkey check with user verification" in paths[path]["post"]["description"], path


# ------------------------------------------------------------------ the reviewer's takeover


async def test_a_stale_cookie_cannot_add_its_own_passkey(client: httpx.AsyncClient, ctx: Context) -> None:
    """The takeover: a stale (or stolen) session adds the attacker's passkey, signs in freshly with it and
    then owns every step-up gate. Refused at begin, and at finish when the session went stale between."""
    owner, session_id = await _signed_up(client)
    begin = await owner.post("/auth/credentials/begin")
    assert begin.status_code == 200  # fresh right after sign-up
    _stale(ctx, session_id)
    attacker_key = fresh("EdDSA")
    finish = await owner.post("/auth/credentials/finish", attacker_key.create(begin.json(), origin=ORIGIN))
    assert _recheck_failed(finish)
    assert _recheck_failed(await owner.post("/auth/credentials/begin"))
    info = (await owner.post("/auth/user-info")).json()
    assert len(info["credentials"]) == 1


def test_a_stale_cookie_cannot_add_a_passkey_over_websocket(browser: TestClient, ctx: Context) -> None:
    name = unique_name()
    owner = SoftAuthenticator()
    begin = browser.post("/auth/register/begin", json={"user_name": name}).json()
    assert browser.post("/auth/register/finish", json=owner.create(begin, origin=ORIGIN)).status_code == 200
    _stale(ctx, browser.get("/auth/me").json()["session_id"])
    with browser.websocket_connect(f"{WS}/add_credential", headers={"origin": ORIGIN}) as ws:
        error = ws.receive_json()
    assert error["status"] == "error" and error["code"] == "reauth_required"


@pytest.mark.parametrize("how", ["logout", "disable", "stale"])
def test_a_websocket_ceremony_begun_before_the_end_cannot_finish_after(
    browser: TestClient, ctx: Context, how: str
) -> None:
    name = unique_name()
    owner = SoftAuthenticator()
    begin = browser.post("/auth/register/begin", json={"user_name": name}).json()
    assert browser.post("/auth/register/finish", json=owner.create(begin, origin=ORIGIN)).status_code == 200
    session_id = browser.get("/auth/me").json()["session_id"]
    attacker_key = SoftAuthenticator("EdDSA")
    with browser.websocket_connect(f"{WS}/add_credential", headers={"origin": ORIGIN}) as ws:
        options = ws.receive_json()
        if how == "logout":
            assert browser.post("/auth/logout").status_code == 200
        elif how == "disable":
            users.set_disabled(ctx, name, True)
        else:
            _stale(ctx, session_id)
        ws.send_json(attacker_key.create(options, origin=ORIGIN))
        outcome = ws.receive_json()
    assert outcome["status"] == "error"
    assert outcome["code"] == ("reauth_required" if how == "stale" else "session_ended")
    if how != "stale":
        return
    assert len(browser.post("/auth/user-info").json()["credentials"]) == 1


async def test_a_stale_session_cannot_end_other_sessions_or_rename(
    client: httpx.AsyncClient, second: httpx.AsyncClient, ctx: Context
) -> None:
    laptop, laptop_session = await _signed_up(client)
    phone = Passkeys(second, laptop.authenticator)
    assert (await phone.login()).status_code == 200
    phone_session = (await phone.me()).json()["session_id"]
    _stale(ctx, phone_session)
    assert _recheck_failed(await phone.post("/auth/delete-session", {"session_id": laptop_session}))
    assert (await laptop.me()).status_code == 200
    credential_id = laptop.authenticator.last_credential.id_b64
    assert _recheck_failed(
        await phone.post("/auth/rename-credential", {"credential_id": credential_id, "name": "x"})
    )
    # Ending its own session is a sign-out: no check needed.
    assert (await phone.post("/auth/delete-session", {"session_id": phone_session})).status_code == 200
    assert (await phone.me()).status_code == 401
    # With a fresh check, another session can be ended, and that is audited with the acting session.
    assert (await laptop.post("/auth/delete-session", {"session_id": "unknown"})).status_code == 404


# ------------------------------------------------------------------ device links


async def _link(browser: Passkeys) -> dict[str, Any]:
    made = await browser.post("/auth/create-device-link")
    assert made.status_code == 200, made.text
    return dict(made.json())


async def _valid(client: httpx.AsyncClient, passphrase: str) -> bool:
    answer = await client.post("/auth/validate-device-token", json={"token": passphrase})
    return answer.status_code == 200


async def test_device_links_are_listed_and_revoked(
    client: httpx.AsyncClient, second: httpx.AsyncClient, ctx: Context
) -> None:
    owner, session_id = await _signed_up(client)
    link = await _link(owner)
    listed = (await owner.http.get("/auth/device-links")).json()["device_links"]
    assert len(listed) == 1
    entry = listed[0]
    assert entry["session_id"] == session_id and entry["by_this_session"] is True
    assert entry["created_by"] == "user" and entry["created_at"] and entry["expires_at"]
    assert (await owner.post("/auth/user-info")).json()["device_links"] == listed

    # Another account cannot see or revoke it.
    stranger, _ = await _signed_up(second)
    foreign = await stranger.post("/auth/revoke-device-link", {"link_id": entry["link_id"]})
    assert foreign.status_code == 404 and foreign.json()["code"] == "link_not_found"
    assert (await stranger.http.get("/auth/device-links")).json()["device_links"] == []

    _stale(ctx, session_id)
    assert _recheck_failed(await owner.post("/auth/revoke-device-link", {"link_id": entry["link_id"]}))
    assert await _valid(second, link["passphrase"])
    ctx.db.transact(
        lambda c: c.execute(
            update(session_table).where(session_table.c.id == session_id).values(auth_time=time.time())
        )
    )
    assert (await owner.post("/auth/revoke-device-link", {"link_id": entry["link_id"]})).status_code == 200
    assert not await _valid(second, link["passphrase"])
    assert (await owner.http.get("/auth/device-links")).json()["device_links"] == []


@pytest.mark.parametrize("how", ["logout-all", "disable-enable", "passkey-removed"])
async def test_device_links_do_not_outlive_the_end_of_access(
    client: httpx.AsyncClient, second: httpx.AsyncClient, ctx: Context, how: str
) -> None:
    owner, _ = await _signed_up(client)
    name = (await owner.me()).json()["user_name"]
    if how == "passkey-removed":
        other = fresh("EdDSA")
        added = await owner.add_passkey(other)
        removable = added.json()["credential"]["credential_id"]
    link = await _link(owner)
    assert await _valid(second, link["passphrase"])
    if how == "logout-all":
        assert (await owner.post("/auth/logout-all")).status_code == 200
    elif how == "disable-enable":
        users.set_disabled(ctx, name, True)
        users.set_disabled(ctx, name, False)
    else:
        assert (await owner.post("/auth/delete-credential", {"credential_id": removable})).status_code == 200
    assert not await _valid(second, link["passphrase"])
    kinds = [e["kind"] for e in ctx.db.transact(lambda c: audit.for_user(c, _owner_id(c, name)))]
    assert "links_revoked" in kinds and "link_created" in kinds


def _owner_id(connection: Any, name: str) -> str:
    from passgate.store.models import users as user_table

    return str(connection.execute(user_table.select().where(user_table.c.user_name == name)).first().id)


def test_a_device_link_passphrase_has_at_least_64_bits() -> None:
    words = device_links._wordlist()
    assert device_links.WORDS * math.log2(len(words)) >= 64
    passphrase = device_links.new_passphrase()
    assert len(passphrase.split(".")) == device_links.WORDS
    assert device_links.PASSPHRASE.match(passphrase)


# ------------------------------------------------------------------ passkeys and their sessions


async def test_unblocking_needs_a_check_with_another_passkey(client: httpx.AsyncClient, ctx: Context) -> None:
    """Even if a session confirmed with the blocked passkey survived, it cannot vouch for that passkey."""
    owner, session_id = await _signed_up(client)
    blocked = owner.authenticator.last_credential
    assert (await owner.add_passkey(fresh("EdDSA"))).status_code == 200
    ctx.db.transact(
        lambda c: c.execute(
            update(session_table)
            .where(session_table.c.id == session_id)
            .values(credential_id=blocked.credential_id)
        )
    )
    answer = await owner.post("/auth/clear-credential-flag", {"credential_id": blocked.id_b64})
    assert answer.status_code == 401 and answer.json()["code"] == "reauth_other_passkey"


async def test_the_last_passkey_is_never_removed(client: httpx.AsyncClient, ctx: Context) -> None:
    owner, session_id = await _signed_up(client)
    only = owner.authenticator.last_credential
    ctx.db.transact(
        lambda c: c.execute(
            update(session_table).where(session_table.c.id == session_id).values(credential_id=b"another")
        )
    )
    answer = await owner.post("/auth/delete-credential", {"credential_id": only.id_b64})
    assert answer.status_code == 409 and answer.json()["code"] == "last_credential"


# ------------------------------------------------------------------ the gate sees the end at once


@pytest.mark.parametrize("how", ["logout", "logout-all", "other-session", "disabled", "passkey-removed"])
async def test_forward_auth_refuses_the_very_next_request(
    settings: Settings, tmp_path: Any, how: str
) -> None:
    """No window: the gate's memory forgets an ended session before the ending request answers, even
    with a long backstop window."""
    from appkit import make_settings

    long_window = make_settings(tmp_path / "gate", revocation_window=300)
    gate_ctx = Context.build(long_window)
    gate_ctx.db.migrate()
    try:
        async with app_client(gate_ctx) as http, app_client(gate_ctx) as other:
            owner = Passkeys(http)
            name = unique_name()
            assert (await owner.register(name)).status_code == 200
            spare = fresh("EdDSA")
            spare_id = (await owner.add_passkey(spare)).json()["credential"]["credential_id"]
            cookie = http.cookies[long_window.session_cookie_name]
            second = Passkeys(other, spare)
            assert (await second.login(name)).status_code == 200
            for _ in range(3):
                assert (await _gate(other, cookie)).status_code == 204  # remembered
            if how == "logout":
                assert (await owner.post("/auth/logout")).status_code == 200
            elif how == "logout-all":
                assert (await owner.post("/auth/logout-all")).status_code == 200
            elif how == "other-session":
                sid = (await owner.me()).json()["session_id"]
                assert (await second.post("/auth/delete-session", {"session_id": sid})).status_code == 200
            elif how == "disabled":
                users.set_disabled(gate_ctx, name, True)
            else:
                # the owner's session was opened with the first passkey: the spare's session removes it
                first_id = owner.authenticator.last_credential.id_b64
                assert (
                    await second.post("/auth/delete-credential", {"credential_id": first_id})
                ).status_code == 200
            assert (await _gate(other, cookie)).status_code == 401
            assert spare_id
    finally:
        gate_ctx.db.dispose()


async def _gate(http: httpx.AsyncClient, cookie: str) -> httpx.Response:
    return await http.get(
        "/auth/forward-auth", headers={"cookie": f"passgate={cookie}", "accept": "application/json"}
    )


async def test_an_ended_sessions_token_cannot_become_a_cookie_again(client: httpx.AsyncClient) -> None:
    owner, _ = await _signed_up(client)
    token = client.cookies["passgate"]
    assert (await owner.post("/auth/logout")).status_code == 200
    again = await client.post("/auth/set-session", json={"token": token})
    assert again.status_code == 401 and again.json()["code"] == "session_ended"


async def test_revoking_a_link_with_a_logged_out_cookie_a_replay_or_an_oversized_id(
    client: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    owner, _ = await _signed_up(client)
    await _link(owner)
    (entry,) = (await owner.http.get("/auth/device-links")).json()["device_links"]
    too_long = await owner.post("/auth/revoke-device-link", {"link_id": "x" * 65})
    assert too_long.status_code == 400 and too_long.json()["code"] == "invalid_request"
    assert (await owner.post("/auth/revoke-device-link", {"link_id": entry["link_id"]})).status_code == 200
    replay = await owner.post("/auth/revoke-device-link", {"link_id": entry["link_id"]})
    assert replay.status_code == 404 and replay.json()["code"] == "link_not_found"
    await _link(owner)
    (fresh_entry,) = (await owner.http.get("/auth/device-links")).json()["device_links"]
    token = client.cookies["passgate"]
    assert (await owner.post("/auth/logout")).status_code == 200
    second.cookies.set("passgate", token)  # the old cookie, replayed after the logout
    stale = await second.post("/auth/revoke-device-link", json={"link_id": fresh_entry["link_id"]})
    assert stale.status_code == 401 and stale.json()["code"] == "session_ended"
