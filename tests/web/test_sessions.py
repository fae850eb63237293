"""Sessions: the cookie, tokens that are forged / expired / idle / revoked, step-up and its re-check,
and the account endpoints (user-info, rename-credential, delete-credential, delete-session)."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from appkit import app_client, make_settings
from flows import ORIGIN, Passkeys, fresh, unique_name
from passgate.services import users as admin
from passgate.services.context import Context
from passgate.store import users as user_rows
from passgate.store.models import sessions as session_table
from passgate.web.app import create_app
from softkey import SoftAuthenticator

GOOGLE_PASSWORD_MANAGER = bytes.fromhex("ea9b8d664d011d213ce4b6b48cb575d4")


@pytest.fixture
async def second(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(ctx) as http:
        yield http


async def _signed_up(client: httpx.AsyncClient, authenticator: SoftAuthenticator | None = None) -> Passkeys:
    browser = Passkeys(client, authenticator)
    answer = await browser.register(unique_name())
    assert answer.status_code == 200, answer.text
    return browser


def _update_session(ctx: Context, session_id: str, **values: Any) -> None:
    statement = update(session_table).where(session_table.c.id == session_id).values(**values)
    ctx.db.transact(lambda c: c.execute(statement))


async def _me_with(ctx: Context, token: str, cookie: str = "passgate") -> httpx.Response:
    """`GET /auth/me` from a browser that holds only this token."""
    async with app_client(ctx) as http:
        return await http.get("/auth/me", headers={"cookie": f"{cookie}={token}"})


def _next_second() -> None:
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.02)


def _token(browser: Passkeys) -> str:
    token = browser.http.cookies.get("passgate")
    assert token
    return token


# ---------------------------------------------------------------- the cookie


async def test_cookie_on_http_localhost(client: httpx.AsyncClient) -> None:
    browser = Passkeys(client)
    answer = await browser.register(unique_name())
    cookie = answer.headers["set-cookie"]
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert attributes[0].startswith("passgate=")
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "secure" not in attributes
    assert not any(part.startswith("domain") for part in attributes)
    assert any(part.startswith("max-age=") and int(part.split("=")[1]) > 86400 for part in attributes)


async def test_cookie_on_https_is_host_prefixed_and_secure(tmp_path: Path) -> None:
    origin = "https://localhost:8443"
    ctx = Context.build(make_settings(tmp_path, origins=[origin]))
    ctx.db.migrate()
    transport = httpx.ASGITransport(app=create_app(ctx.settings, ctx))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url=origin, headers={"origin": origin}
        ) as http:
            begin = await http.post("/auth/register/begin", json={"user_name": unique_name()})
            authenticator = SoftAuthenticator()
            answer = await http.post(
                "/auth/register/finish", json=authenticator.create(begin.json(), origin=origin)
            )
            assert answer.status_code == 200, answer.text
            attributes = [part.strip().lower() for part in answer.headers["set-cookie"].split(";")]
            assert attributes[0].startswith("__host-passgate=")
            assert {"secure", "httponly", "samesite=lax", "path=/"} <= set(attributes)
            assert not any(part.startswith("domain") for part in attributes)
            assert "max-age=31536000" in answer.headers["strict-transport-security"]
            assert (await http.get("/auth/me")).status_code == 200
            # The plain name means nothing on https.
            token = http.cookies.get("__Host-passgate")
            plain = await http.get("/auth/me", headers={"cookie": f"passgate={token}"})
            assert plain.status_code == 401
            cleared = await http.post("/auth/logout")
            assert cleared.headers["set-cookie"].lower().startswith('__host-passgate="";')
    finally:
        ctx.db.dispose()


# ---------------------------------------------------------------- tokens refused


def _flip_bit(token: str, part: int) -> str:
    pieces = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    pieces[part] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return ".".join(pieces)


@pytest.mark.parametrize("part", [0, 1, 2])
async def test_forged_token_is_refused(client: httpx.AsyncClient, ctx: Context, part: int) -> None:
    token = _token(await _signed_up(client))
    assert (await _me_with(ctx, token)).status_code == 200
    forged = await _me_with(ctx, _flip_bit(token, part))
    assert forged.status_code == 401


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 5000])
async def test_garbage_tokens_are_refused(ctx: Context, token: str) -> None:
    assert (await _me_with(ctx, token)).status_code == 401


async def test_absolutely_expired_session_is_refused(client: httpx.AsyncClient, ctx: Context) -> None:
    browser = await _signed_up(client)
    session_id = (await browser.me()).json()["session_id"]
    _update_session(ctx, session_id, expires_at=time.time() - 1)
    answer = await browser.me()
    assert answer.status_code == 401 and answer.json()["code"] == "session_ended"


async def test_expired_token_is_refused(client: httpx.AsyncClient, ctx: Context) -> None:
    browser = await _signed_up(client)
    me = (await browser.me()).json()
    token = ctx.tokens.issue(
        session_id=me["session_id"],
        user_id=me["user_id"],
        issued_at=time.time() - 100,
        expires_at=time.time() - 10,
    )
    assert (await _me_with(ctx, token)).status_code == 401
    fresh_token = ctx.tokens.issue(
        session_id=me["session_id"], user_id=me["user_id"], issued_at=time.time(), expires_at=time.time() + 60
    )
    assert (await _me_with(ctx, fresh_token)).status_code == 200


async def test_token_for_another_users_session_is_refused(client: httpx.AsyncClient, ctx: Context) -> None:
    browser = await _signed_up(client)
    me = (await browser.me()).json()
    wrong = ctx.tokens.issue(
        session_id=me["session_id"],
        user_id="someone-else",
        issued_at=time.time(),
        expires_at=time.time() + 60,
    )
    assert (await _me_with(ctx, wrong)).status_code == 401


async def test_idle_session_is_refused(client: httpx.AsyncClient, ctx: Context) -> None:
    browser = await _signed_up(client)
    session_id = (await browser.me()).json()["session_id"]
    idle = ctx.settings.session_idle_timeout
    _update_session(ctx, session_id, last_seen_at=time.time() - idle + 120)
    assert (await browser.me()).status_code == 200  # still within the idle window: seen again now
    _update_session(ctx, session_id, last_seen_at=time.time() - idle - 1)
    answer = await browser.me()
    assert answer.status_code == 401 and answer.json()["code"] == "session_ended"


async def test_activity_moves_last_seen(client: httpx.AsyncClient, ctx: Context) -> None:
    browser = await _signed_up(client)
    session_id = (await browser.me()).json()["session_id"]
    idle = ctx.settings.session_idle_timeout
    _update_session(ctx, session_id, last_seen_at=time.time() - idle + 120)
    assert (await browser.me()).status_code == 200
    _update_session(ctx, session_id, last_seen_at=time.time() - 100)  # (the touch above happened)
    sessions = (await browser.post("/auth/user-info")).json()["sessions"]
    assert [s["session_id"] for s in sessions] == [session_id]


# ---------------------------------------------------------------- revoked


async def test_logout_revokes_the_token(client: httpx.AsyncClient, ctx: Context) -> None:
    browser = await _signed_up(client)
    token = _token(browser)
    answer = await browser.post("/auth/logout")
    assert answer.status_code == 200
    assert (
        'passgate="";' in answer.headers["set-cookie"] or "max-age=0" in answer.headers["set-cookie"].lower()
    )
    assert (await _me_with(ctx, token)).status_code == 401
    assert (await browser.post("/auth/logout")).status_code == 200  # harmless when signed out


async def test_delete_session_from_another_browser(
    client: httpx.AsyncClient, second: httpx.AsyncClient, ctx: Context
) -> None:
    laptop = await _signed_up(client)
    name = (await laptop.me()).json()["user_name"]
    phone = Passkeys(second, laptop.authenticator)
    assert (await phone.login(name)).status_code == 200
    laptop_session = (await laptop.me()).json()["session_id"]

    listed = (await phone.post("/auth/user-info")).json()["sessions"]
    assert {s["session_id"] for s in listed} >= {laptop_session}
    assert [s["is_current"] for s in listed if s["session_id"] == laptop_session] == [False]
    ended = await phone.post("/auth/delete-session", {"session_id": laptop_session})
    assert ended.status_code == 200, ended.text
    assert (await laptop.me()).status_code == 401
    assert (await phone.me()).status_code == 200
    again = await phone.post("/auth/delete-session", {"session_id": laptop_session})
    assert again.status_code == 404 and again.json()["code"] == "session_not_found"


async def test_delete_session_of_another_user_is_not_found(
    client: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    alice = await _signed_up(client)
    bob = await _signed_up(second)
    alice_session = (await alice.me()).json()["session_id"]
    answer = await bob.post("/auth/delete-session", {"session_id": alice_session})
    assert answer.status_code == 404
    assert (await alice.me()).status_code == 200


async def test_logout_all_revokes_every_session(
    client: httpx.AsyncClient, second: httpx.AsyncClient, ctx: Context
) -> None:
    laptop = await _signed_up(client)
    name = (await laptop.me()).json()["user_name"]
    phone = Passkeys(second, laptop.authenticator)
    assert (await phone.login(name)).status_code == 200
    tokens = [_token(laptop), _token(phone)]
    async with app_client(ctx) as third:
        other_user = await _signed_up(third)
        answer = await laptop.post("/auth/logout-all")
        assert answer.status_code == 200 and answer.json()["sessions_ended"] == 2
        assert answer.headers["set-cookie"].startswith('passgate="";')
        for token in tokens:
            assert (await _me_with(ctx, token)).status_code == 401
        assert (await other_user.me()).status_code == 200  # nobody else is signed out


async def test_disabled_user_is_signed_out(client: httpx.AsyncClient, ctx: Context) -> None:
    browser = await _signed_up(client)
    me = (await browser.me()).json()
    token = _token(browser)
    # The flag alone refuses the session (even if its row survived) ...
    ctx.db.transact(lambda c: user_rows.set_disabled(c, me["user_id"], True))
    assert (await _me_with(ctx, token)).status_code == 401
    ctx.db.transact(lambda c: user_rows.set_disabled(c, me["user_id"], False))
    assert (await _me_with(ctx, token)).status_code == 200
    # ... and disabling through the service also ends every session.
    admin.set_disabled(ctx, me["user_name"], True)
    admin.set_disabled(ctx, me["user_name"], False)
    assert (await _me_with(ctx, token)).status_code == 401
    assert (await browser.login()).status_code == 200  # enabled again: can sign in


async def test_me_from_memory_answers_what_is_true_now(
    client: httpx.AsyncClient, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`GET /auth/me` is answered again from memory while the database is unchanged (as when serving,
    with the follower running): a change to the account, a sign-out, the step-up window passing and the
    idle timeout, with nothing else written, are all in the next answer; and a remembered answer is the
    lane's, byte for byte, headers included."""
    from passgate.services import sessions, stepup
    from passgate.web.routes import auth

    monkeypatch.setattr(ctx.db, "followed", True)
    clock = [time.time()]
    for module in (sessions, stepup, auth):
        monkeypatch.setattr(module, "now", lambda: clock[0])
    other = await _signed_up(client)
    assert (await other.me()).status_code == 200 and (await other.me()).status_code == 200
    other_token = _token(other)
    assert (await client.post("/auth/logout")).status_code == 200
    signed_out = await client.get("/auth/me", headers={"cookie": f"passgate={other_token}"})
    assert signed_out.status_code == 401

    browser = await _signed_up(client)
    first, again = await browser.me(), await browser.me()
    assert first.json()["stepup_fresh"] is True
    assert (again.content, sorted(again.headers.multi_items())) == (
        first.content,
        sorted(first.headers.multi_items()),
    )
    ctx.db.transact(lambda c: user_rows.set_display_name(c, first.json()["user_id"], "Renamed"))
    renamed = {**first.json(), "display_name": "Renamed"}
    assert (await browser.me()).json() == renamed
    checked = clock[0] - ctx.settings.stepup_max_age + 10  # the last check: fresh for 10 s more
    _update_session(ctx, first.json()["session_id"], auth_time=checked)
    renamed["auth_time"] = int(checked)
    assert (await browser.me()).json() == (await browser.me()).json() == renamed
    clock[0] += 20  # time alone, well before the next last-seen update
    assert (await browser.me()).json() == {**renamed, "stepup_fresh": False}
    clock[0] += ctx.settings.session_idle_timeout  # idle (the last-seen update above was long before)
    assert (await browser.me()).status_code == 401


# ---------------------------------------------------------------- step-up


async def _two_passkeys(browser: Passkeys) -> tuple[str, SoftAuthenticator]:
    """Add a second passkey (on another authenticator); return its id and that authenticator."""
    other = fresh("EdDSA")
    added = await browser.add_passkey(other)
    assert added.status_code == 200, added.text
    return str(added.json()["credential"]["credential_id"]), other


@pytest.mark.parametrize(
    ("path", "body"),
    [("/auth/delete-credential", "second"), ("/auth/create-device-link", None), ("/auth/logout-all", None)],
)
async def test_stepup_needed_when_the_last_check_is_stale(
    client: httpx.AsyncClient, ctx: Context, path: str, body: str | None
) -> None:
    browser = await _signed_up(client)
    second_id, _ = await _two_passkeys(browser)
    payload = {"credential_id": second_id} if body else {}
    before = (await browser.me()).json()
    _update_session(ctx, before["session_id"], auth_time=time.time() - ctx.settings.stepup_max_age - 5)
    assert (await browser.me()).json()["stepup_fresh"] is False

    stale = await browser.post(path, payload)
    assert stale.status_code == 401 and stale.json()["code"] == "reauth_required"
    assert (await browser.me()).status_code == 200  # step-up does not sign out
    old_cookie = _token(browser)

    # The re-check: a signed-in login/begin + finish (with UV) refreshes the same session.
    # (Tokens carry whole seconds: let the clock tick so the new token's `iat` differs.)
    _next_second()
    options = await browser.login_options()
    assert options["publicKey"]["userVerification"] == "required"
    recheck = await browser.post("/auth/login/finish", browser.authenticator.get(options, origin=ORIGIN))
    assert recheck.status_code == 200, recheck.text
    after = (await browser.me()).json()
    assert after["session_id"] == before["session_id"]
    assert after["auth_time"] > before["auth_time"] - ctx.settings.stepup_max_age
    assert after["auth_time"] >= int(time.time()) - 2 and after["stepup_fresh"] is True
    assert _token(browser) != old_cookie
    assert len((await browser.post("/auth/user-info")).json()["sessions"]) == 1

    done = await browser.post(path, payload)
    assert done.status_code == 200, done.text


async def test_stepup_needs_user_verification(client: httpx.AsyncClient, ctx: Context) -> None:
    browser = await _signed_up(client, SoftAuthenticator(user_verified=False))
    # Signed up without UV: even adding a passkey needs a check with UV first.
    add = await browser.post("/auth/credentials/begin")
    assert add.status_code == 401 and add.json()["code"] == "reauth_required"
    options = await browser.login_options()
    await browser.post("/auth/login/finish", browser.authenticator.get(options, origin=ORIGIN, uv=True))
    second_id, _ = await _two_passkeys(browser)
    _update_session(ctx, (await browser.me()).json()["session_id"], user_verified=False)
    answer = await browser.post("/auth/delete-credential", {"credential_id": second_id})
    assert answer.status_code == 401 and answer.json()["code"] == "reauth_required"
    # A re-check without UV is refused.
    options = await browser.login_options()
    refused = await browser.post("/auth/login/finish", browser.authenticator.get(options, origin=ORIGIN))
    assert refused.status_code == 400
    # With UV it passes.
    options = await browser.login_options()
    recheck = await browser.post(
        "/auth/login/finish", browser.authenticator.get(options, origin=ORIGIN, uv=True)
    )
    assert recheck.status_code == 200, recheck.text
    assert (await browser.post("/auth/delete-credential", {"credential_id": second_id})).status_code == 200


async def test_recheck_with_another_users_passkey_is_refused(
    client: httpx.AsyncClient, second: httpx.AsyncClient, ctx: Context
) -> None:
    """A signed-in re-check is for the signed-in user: another account's passkey neither refreshes the
    session nor switches the browser to that account."""
    alice = await _signed_up(client)
    bob = await _signed_up(second)
    before = (await alice.me()).json()
    options = await alice.login_options()
    answer = await alice.post("/auth/login/finish", bob.authenticator.get(options, origin=ORIGIN))
    assert answer.status_code == 400 and answer.json()["code"] == "sign_in_failed"
    after = (await alice.me()).json()
    assert (after["user_id"], after["session_id"], after["auth_time"]) == (
        before["user_id"],
        before["session_id"],
        before["auth_time"],
    )
    assert len((await bob.post("/auth/user-info")).json()["sessions"]) == 1


async def test_recheck_challenge_cannot_be_finished_by_another_browser(
    client: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    alice = await _signed_up(client)
    options = await alice.login_options()  # bound to Alice's session
    assertion = alice.authenticator.get(options, origin=ORIGIN)
    stolen = await second.post("/auth/login/finish", json=assertion)
    assert stolen.status_code == 400
    assert (await second.get("/auth/me")).status_code == 401


# ---------------------------------------------------------------- account endpoints


async def test_user_info_shape(client: httpx.AsyncClient) -> None:
    browser = await _signed_up(
        client, SoftAuthenticator(aaguid=GOOGLE_PASSWORD_MANAGER, backup_eligible=True)
    )
    await browser.post("/auth/logout")
    assert (await browser.login()).status_code == 200
    info = (await browser.post("/auth/user-info")).json()
    assert info["status"] == "success"
    user = info["user"]
    assert user["visits"] == 2 and user["last_seen"].endswith("Z")
    assert set(user) >= {"user_id", "user_name", "display_name", "created_at", "last_seen", "visits"}
    [credential] = info["credentials"]
    assert credential["authenticator"] == "Google Password Manager"
    assert credential["name"] == "Google Password Manager" and credential["custom_name"] is None
    assert credential["aaguid"] == "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
    assert credential["is_current_session"] is True and credential["backup_eligible"] is True
    assert credential["sign_count"] == 1 and credential["flagged"] is False
    assert info["aaguid_info"][credential["aaguid"]]["icon_light"].startswith("data:image/")
    [session] = info["sessions"]
    assert session["is_current"] is True and session["credential_id"] == credential["credential_id"]
    assert session["amr"] == ["swk", "user", "mfa"]
    assert session["user_agent"]


async def test_user_info_needs_a_session(ctx: Context) -> None:
    async with app_client(ctx) as http:
        assert (await http.post("/auth/user-info")).status_code == 401


async def test_rename_credential(client: httpx.AsyncClient, second: httpx.AsyncClient) -> None:
    browser = await _signed_up(client)
    credential_id = browser.authenticator.last_credential.id_b64
    answer = await browser.post(
        "/auth/rename-credential", {"credential_id": credential_id, "name": "  Work laptop "}
    )
    assert answer.status_code == 200, answer.text
    [credential] = (await browser.post("/auth/user-info")).json()["credentials"]
    assert credential["name"] == credential["custom_name"] == "Work laptop"

    stranger = await _signed_up(second)
    theirs = await stranger.post("/auth/rename-credential", {"credential_id": credential_id, "name": "mine"})
    assert theirs.status_code == 404 and theirs.json()["code"] == "credential_not_found"
    bad = await browser.post("/auth/rename-credential", {"credential_id": "!!", "name": "x"})
    assert bad.status_code == 400
    too_long = await browser.post(
        "/auth/rename-credential", {"credential_id": credential_id, "name": "x" * 1000}
    )
    assert too_long.status_code == 400


async def test_delete_credential_rules(client: httpx.AsyncClient, second: httpx.AsyncClient) -> None:
    laptop = await _signed_up(client)
    first_id = laptop.authenticator.last_credential.id_b64
    second_id, phone_key = await _two_passkeys(laptop)
    name = (await laptop.me()).json()["user_name"]

    in_use = await laptop.post("/auth/delete-credential", {"credential_id": first_id})
    assert in_use.status_code == 409 and in_use.json()["code"] == "credential_in_use"

    # The phone signs in with the second passkey and removes the first one.
    phone = Passkeys(second, phone_key)
    assert (await phone.login(name)).status_code == 200
    removed = await phone.post("/auth/delete-credential", {"credential_id": first_id})
    assert removed.status_code == 200, removed.text
    assert removed.json()["sessions_ended"] == 1

    # The laptop's session (opened with the removed passkey) ended with it.
    assert (await laptop.me()).json()["code"] == "session_ended"
    last = await phone.post("/auth/delete-credential", {"credential_id": second_id})
    assert last.status_code == 409 and last.json()["code"] == "credential_in_use"
    unknown = await phone.post("/auth/delete-credential", {"credential_id": "AAAAAAAAAAAAAAAAAAAAAA"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "credential_not_found"
    assert [c["credential_id"] for c in (await phone.post("/auth/user-info")).json()["credentials"]] == [
        second_id
    ]
    # The removed passkey no longer signs in.
    assert (await laptop.login()).status_code == 400


async def test_delete_another_users_credential_is_not_found(
    client: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    alice = await _signed_up(client)
    await _two_passkeys(alice)
    bob = await _signed_up(second)
    await _two_passkeys(bob)
    answer = await bob.post(
        "/auth/delete-credential", {"credential_id": alice.authenticator.last_credential.id_b64}
    )
    assert answer.status_code == 404
    assert len((await alice.post("/auth/user-info")).json()["credentials"]) == 2
