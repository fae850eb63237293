"""The database's bad moments: fail closed with a clear 503, never stall the event loop, recover alone.

In-process: a SQLite write lock held by another connection (the event loop keeps running, the write
waits off the loop and gets `DatabaseBusy`), and an unreachable PostgreSQL on every face (API, page,
WebSocket, forward-auth). With real `passgate serve` processes, the scenarios of benchmarks/faults.py at
a small scale (a short mixed load, another process holding SQLite's write lock, kill -9 mid-load,
a private PostgreSQL stopped and started mid-load) and a short run of benchmarks/load.py.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
import warnings
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from appkit import app_client, make_settings
from flows import ORIGIN, Passkeys
from passgate.errors import DatabaseBusy
from passgate.services.context import Context
from passgate.store.database import Database
from passgate.web.app import create_app
from pgcluster import pg_bin
from servers import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import faults
import load

IN_CI = os.environ.get("CI", "").lower() == "true"

# --------------------------------------------------------------------------- in-process


@pytest.fixture
def locked_database(tmp_path: Path) -> tuple[Database, sqlite3.Connection]:
    path = tmp_path / "locked.db"
    database = Database(f"sqlite:///{path}", timeout=0.4)
    database.migrate()
    holder = sqlite3.connect(path, isolation_level=None)
    return database, holder


def _insert(connection: Connection) -> int:
    connection.execute(text("CREATE TABLE IF NOT EXISTS marks (value INTEGER)"))
    connection.execute(text("INSERT INTO marks VALUES (1)"))
    return int(connection.execute(text("SELECT count(*) FROM marks")).scalar_one())


async def _longest_stall(task: asyncio.Future[object]) -> float:
    """The longest the event loop went without running this coroutine while `task` ran."""
    longest, last = 0.0, time.monotonic()
    while not task.done():
        await asyncio.sleep(0.005)
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    return longest


async def test_a_locked_sqlite_write_waits_off_the_loop_then_is_busy(
    locked_database: tuple[Database, sqlite3.Connection],
) -> None:
    database, holder = locked_database
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        write = asyncio.ensure_future(database.run(_insert))
        stall = await _longest_stall(write)
        with pytest.raises(DatabaseBusy) as busy:
            await write
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
    assert busy.value.status == 503 and busy.value.code == "database_busy"
    assert 0.3 <= waited < 2.0, waited  # the bounded wait, not SQLite's old 10 s on the loop
    assert stall < 0.2, f"the event loop stalled {stall:.2f} s"
    assert await database.run(_insert) == 1  # nothing of the refused write remains; writes work again
    database.dispose()


async def test_a_write_gets_through_when_the_lock_is_released_within_the_wait(
    locked_database: tuple[Database, sqlite3.Connection],
) -> None:
    database, holder = locked_database
    holder.execute("BEGIN IMMEDIATE")
    write = asyncio.ensure_future(database.run(_insert))
    await asyncio.sleep(0.1)
    holder.execute("ROLLBACK")
    assert await write == 1
    database.dispose()


@pytest.fixture
def unreachable(tmp_path: Path, ctx: Context) -> Context:
    """A context whose PostgreSQL is down (nothing listens on its port); same signing key as `ctx`."""
    settings = make_settings(
        tmp_path / "down",
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/passgate",
        database_timeout=1.0,
    )
    return Context.build(settings)


async def test_postgresql_down_is_503_on_every_face(
    passkeys: Passkeys, unreachable: Context, ctx: Context
) -> None:
    assert (await passkeys.register()).status_code == 200
    cookie = passkeys.http.cookies.get(ctx.settings.session_cookie_name)
    assert cookie
    jar = {unreachable.settings.session_cookie_name: cookie}
    async with app_client(unreachable) as http:
        http.cookies.update(jar)
        answers = {
            "me": await http.get("/auth/me"),
            "sign-in": await http.post("/auth/login/begin", json={}),
            "forward-auth": await http.get("/auth/forward-auth"),
            "page": await http.get("/account", headers={"accept": "text/html"}),
        }
    for face, answer in answers.items():
        assert answer.status_code == 503, (face, answer.status_code, answer.text)
        assert "database_unavailable" in answer.text, (face, answer.text)
    assert answers["me"].headers["retry-after"]
    assert answers["page"].headers["content-type"].startswith("text/html")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
        from starlette.websockets import WebSocketDisconnect

    browser = TestClient(create_app(unreachable.settings, unreachable), base_url=ORIGIN)  # no lifespan
    url = "ws://localhost:8000/auth/ws/register_new?user_name=someone"
    with browser.websocket_connect(url, headers={"origin": ORIGIN}) as ws:
        message = ws.receive_json()
        assert message["status"] == "error" and message["code"] == "database_unavailable"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1013  # RFC 6455 §7.4.1 registry: Try Again Later
    unreachable.db.dispose()


# --------------------------------------------------------------------------- real processes


async def test_mixed_load_on_sqlite_has_no_errors(tmp_path: Path) -> None:
    with load.run_instances(tmp_path, 1) as servers:
        users = await load.register(servers[0], 24)
        refused = await load.signed_out_cookie(servers[0])
        tally = await load.Load(servers, users, refused, concurrency=12).run(2000)
    assert len(tally.outcomes) >= 2000
    assert not tally.errors(), load.report(tally, "mixed load")
    assert not tally.refused_but_allowed()


async def test_sqlite_lock_held_by_another_process(tmp_path: Path) -> None:
    """Static files and cached forward-auth answers flow while a write waits; the write is 503 after the
    bounded wait; a write whose lock is released in time and writes after the release succeed."""
    result = await faults.sqlite_lock(tmp_path, database_timeout=1.0)
    assert not result.errors, result.describe()


async def test_kill_9_mid_load_loses_no_acknowledged_sign_up(tmp_path: Path) -> None:
    result = await faults.kill_nine(tmp_path, users=16, concurrency=8, seconds=1.5)
    assert len(result.tally.signed_up) > 10, result.describe()
    assert not result.errors, result.describe()


@pytest.mark.postgres
async def test_postgresql_stopped_and_started_mid_load(tmp_path: Path) -> None:
    if pg_bin() is None:
        if IN_CI:
            pytest.fail("PostgreSQL server programs (initdb, pg_ctl) are required under CI=true")
        pytest.skip("PostgreSQL server programs (initdb, pg_ctl) not installed")
    with faults.postgres_setup(tmp_path, 1, database_timeout=2.0) as (cluster, servers):
        result = await faults.postgres_restart(
            servers, cluster, users=16, concurrency=8,
            before=1.0, outage=1.5, after=2.0, database_timeout=2.0,
        )  # fmt: skip
    assert result.unavailable > 0, result.describe()  # the outage was seen, and refused cleanly
    assert not result.errors, result.describe()
