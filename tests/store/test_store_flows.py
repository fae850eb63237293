"""The `/auth` flows end to end on SQLite and PostgreSQL (same code, same migrations)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from appkit import app_client, make_settings, statements
from flows import ORIGIN, Passkeys, fresh, unique_name
from passgate.services.context import Context


@pytest.fixture
def db_ctx(tmp_path: Path, database_url: str) -> Iterator[Context]:
    ctx = Context.build(make_settings(tmp_path, database_url=database_url))
    ctx.db.migrate()
    yield ctx
    ctx.db.dispose()


@pytest.fixture
async def db_client(db_ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(db_ctx) as http:
        yield http


async def test_sign_up_sign_in_add_and_remove_a_passkey(db_client: httpx.AsyncClient) -> None:
    browser = Passkeys(db_client)
    name = unique_name()
    assert (await browser.register(name)).status_code == 200
    me = (await browser.me()).json()
    assert me["user_name"] == name

    await browser.post("/auth/logout")
    assert (await browser.me()).status_code == 401
    assert (await browser.login(name)).status_code == 200
    assert (await browser.me()).json()["user_id"] == me["user_id"]

    second = fresh("EdDSA")
    added = await browser.add_passkey(second)
    assert added.status_code == 200, added.text
    new_id = added.json()["credential"]["credential_id"]
    info = (await browser.post("/auth/user-info")).json()
    assert len(info["credentials"]) == 2

    removed = await browser.post("/auth/delete-credential", {"credential_id": new_id})
    assert removed.status_code == 200, removed.text
    info = (await browser.post("/auth/user-info")).json()
    assert [c["credential_id"] for c in info["credentials"]] != [new_id]
    assert len(info["credentials"]) == 1
    # The removed passkey can no longer sign in.
    await browser.post("/auth/logout")
    options = await browser.login_options()
    refused = await browser.post("/auth/login/finish", second.get(options, origin=ORIGIN))
    assert refused.status_code == 400 and refused.json()["code"] == "sign_in_failed"


async def test_logout_all_ends_every_session(db_client: httpx.AsyncClient, db_ctx: Context) -> None:
    laptop = Passkeys(db_client)
    name = unique_name()
    assert (await laptop.register(name)).status_code == 200
    async with app_client(db_ctx) as other:  # a second browser: its own cookie jar
        phone = Passkeys(other, laptop.authenticator)
        assert (await phone.login(name)).status_code == 200
        assert (await phone.me()).status_code == 200
        ended = await laptop.post("/auth/logout-all")
        assert ended.status_code == 200, ended.text
        assert ended.json()["sessions_ended"] == 2
        assert (await phone.me()).status_code == 401
        assert (await laptop.me()).status_code == 401


async def test_one_assertion_posted_twice_at_once_succeeds_once(db_client: httpx.AsyncClient) -> None:
    browser = Passkeys(db_client)
    name = unique_name()
    assert (await browser.register(name)).status_code == 200
    await browser.post("/auth/logout")
    assertion = browser.authenticator.get(await browser.login_options(name), origin=ORIGIN)
    answers = await asyncio.gather(*(db_client.post("/auth/login/finish", json=assertion) for _ in range(2)))
    assert sorted(answer.status_code for answer in answers) == [200, 400]


async def test_name_taken_on_both_databases(db_client: httpx.AsyncClient) -> None:
    name = unique_name()
    assert (await Passkeys(db_client).register(name)).status_code == 200
    again = await db_client.post("/auth/register/begin", json={"user_name": name})
    assert again.status_code == 409 and again.json()["code"] == "user_name_taken"


async def test_a_sign_up_writes_in_one_savepoint_without_reading_back(ctx: Context) -> None:
    """The sign-up's write transaction on SQLite, statement by statement: the finish's one savepoint (the
    challenge stays burnt when the write fails), no savepoint per insert (a taken name or credential id
    is `ON CONFLICT DO NOTHING`, no error) and no read of the new account's passkeys to name this one.
    On PostgreSQL each statement is a round trip."""
    async with app_client(ctx) as http:
        browser = Passkeys(http)
        begin = await browser.post("/auth/register/begin", {"user_name": unique_name()})
        seen = statements(ctx.db)
        credential = browser.authenticator.create(begin.json(), origin=ORIGIN)
        assert (await browser.post("/auth/register/finish", credential)).status_code == 200
    write = seen[seen.index("BEGIN IMMEDIATE") :]
    assert [" ".join(statement.split()[:3]) for statement in write] == [
        "BEGIN IMMEDIATE",
        "DELETE FROM challenges",
        "SAVEPOINT passgate",
        "INSERT INTO users",
        "INSERT INTO credentials",
        "INSERT INTO audit_events",
        "INSERT INTO sessions",
        "UPDATE users SET",
        "RELEASE SAVEPOINT passgate",
        "COMMIT",
    ]
