"""PostgreSQL's connection pools: a connection given back a moment ago is used without a `SELECT 1`
first; one idle for longer is tested, and replaced when the server ended it meanwhile. The server's units
of work run on the event loop (psycopg's asyncio connection), keep their connections through a burst,
and give them back when the app ends."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import psycopg
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InternalError, OperationalError

from passgate.errors import ConfigError, DatabaseBusy, DatabaseUnavailable
from passgate.store import database, prepared
from passgate.store.database import Database


def test_a_sqlite_server_does_not_import_the_asyncio_extension() -> None:
    """SQLAlchemy's asyncio extension imports its ORM (~9 MB per worker): PostgreSQL alone needs it."""
    check = (
        "import sys, passgate.cli, passgate.web.app; "
        "assert not {'sqlalchemy.ext.asyncio', 'sqlalchemy.orm', 'greenlet'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)


def _backend_pid(db: Database) -> int:
    pid = db.transact(lambda connection: connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
    return int(pid)


@pytest.mark.postgres
def test_only_an_idle_connection_is_pinged_and_a_dead_one_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(postgres_url)
    pings: list[object] = []
    ping = db.engine.dialect.do_ping
    monkeypatch.setattr(db.engine.dialect, "do_ping", lambda dbapi: pings.append(dbapi) or ping(dbapi))
    first = _backend_pid(db)
    assert _backend_pid(db) == first and pings == []  # the same connection, given back a moment ago

    monkeypatch.setattr(database, "IDLE_PING", 0.0)  # every connection now counts as idle
    with psycopg.connect(postgres_url, autocommit=True) as admin:  # the server ends it meanwhile
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    replaced = _backend_pid(db)  # answered: the ping found it dead and the pool connected afresh
    assert replaced != first and len(pings) == 1
    db.dispose()


async def _backend_pid_on_loop(db: Database, pause: float = 0.0) -> int:
    query = text("SELECT pg_backend_pid() FROM pg_sleep(:pause)")
    pid = await db.run(lambda c: c.execute(query, {"pause": pause}).scalar_one(), write=False)
    return int(pid)


@pytest.mark.postgres
async def test_on_the_event_loop_a_connection_is_kept_and_a_dead_one_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(postgres_url)
    first = await _backend_pid_on_loop(db)
    assert await _backend_pid_on_loop(db) == first

    monkeypatch.setattr(database, "IDLE_PING", 0.0)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    assert await _backend_pid_on_loop(db) != first  # the ping found it dead: no 503 for this request
    await db.release()
    db.dispose()


async def test_units_of_work_run_on_the_event_loop_thread(database_url: str) -> None:
    """No worker thread per unit of work on either database (on PostgreSQL, threads handing the GIL
    to each other at every round trip cost more CPU than the statements)."""
    db = Database(database_url)
    assert await db.run(lambda _c: threading.get_ident(), write=False) == threading.get_ident()
    assert await db.run(lambda _c: threading.get_ident()) == threading.get_ident()
    await db.release()
    db.dispose()


@pytest.mark.postgres
async def test_a_burst_of_sixteen_units_keeps_its_connections_and_release_closes_them(
    postgres_url: str,
) -> None:
    """Sixteen units in flight at once, four times over, use the same sixteen connections: none is
    closed when given back (one worker with 16 requests in flight once paid a new PostgreSQL backend
    for every sixth unit of work)."""
    db = Database(postgres_url)
    seen: set[int] = set()
    for _ in range(4):
        pids = await asyncio.gather(*(_backend_pid_on_loop(db, 0.05) for _ in range(16)))
        assert len(set(pids)) == 16  # all sixteen were in flight together
        seen.update(pids)
    assert len(seen) == 16

    await db.release()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        for _ in range(100):  # a backend leaves pg_stat_activity a moment after its client closed
            query = "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)"
            if not admin.execute(query, (list(seen),)).fetchall():
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("release() left connections open")
    db.dispose()


@pytest.mark.postgres
async def test_a_read_unit_is_its_statements_own_transaction_and_a_write_unit_one_transaction(
    postgres_url: str,
) -> None:
    """A read unit sends no `BEGIN` and `COMMIT` (under READ COMMITTED each statement reads its own
    snapshot either way): two round trips saved. A write unit on the same connection afterwards is one
    transaction again, unless it says its statements need not stand or fall together (`atomic=False`,
    how a ceremony's begin stores its challenge). Told apart by `now()`, the start of the statement's
    transaction."""
    db = Database(postgres_url)
    now = text("SELECT now()")

    def twice(connection: Connection) -> bool:
        return bool(connection.execute(now).scalar_one() == connection.execute(now).scalar_one())

    for _ in range(2):
        assert await db.run(twice, write=False) is False  # two transactions
        assert await db.run(twice) is True  # one
        generation = db.generation
        assert await db.run(twice, atomic=False) is False  # a write unit that needs no transaction
        assert db.generation == generation + 1  # still a write: the mark moves
    await db.release()
    db.dispose()


@pytest.mark.postgres
async def test_a_connection_lost_inside_a_unit_is_a_503_and_is_not_used_again(postgres_url: str) -> None:
    """The server ends the connection in the middle of a unit of work (a restart, an administrator):
    the unit fails as `DatabaseUnavailable` (503), whichever statement met it (a savepoint too, which
    runs on the driver), and the next unit gets a new connection instead of the dead one."""
    db = Database(postgres_url)
    first = await _backend_pid_on_loop(db)

    def cut_off(connection: Connection) -> None:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        with prepared.savepoint(connection):
            pass

    with pytest.raises(DatabaseUnavailable):
        await db.run(cut_off)
    assert await _backend_pid_on_loop(db) != first
    await db.release()
    db.dispose()


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None):
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "sqlstate", "answer"),
    [
        (DBAPIError, "08003", DatabaseUnavailable),  # asyncpg: connection closed mid-operation
        (DBAPIError, "57P01", DatabaseUnavailable),  # the server is shutting down
        (OperationalError, "57P03", DatabaseUnavailable),  # the server is starting up
        (InternalError, None, DatabaseUnavailable),  # the driver lost track of its protocol
        (OperationalError, "40001", DatabaseBusy),  # serialization failure
        (DBAPIError, "40P01", DatabaseBusy),  # deadlock
        (DBAPIError, "55P03", DatabaseBusy),  # lock not available
        (InternalError, "XX000", None),  # the server's own internal error: a bug, answered 500
        (IntegrityError, "23505", None),  # a unique violation: the caller's to handle
    ],
)
def test_postgresql_errors_are_told_apart_by_sqlstate(
    error: type[DBAPIError], sqlstate: str | None, answer: type[Exception] | None
) -> None:
    """The same SQLSTATE means the same answer whichever driver raised it (psycopg and asyncpg both
    carry it on their errors)."""
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    raised = error("SELECT 1", None, _DriverError("driver says no", sqlstate))
    translated = db._translate(raised)
    assert type(translated) is (answer or error)
    db.dispose()


@pytest.mark.postgres
async def test_the_urls_libpq_parameters_reach_the_servers_driver(postgres_url: str) -> None:
    db = Database(f"{postgres_url}?sslmode=disable&application_name=passgate-test")
    await db.check_serving()
    query = text("SELECT current_setting('application_name')")
    assert await db.run(lambda c: c.execute(query).scalar_one(), write=False) == "passgate-test"
    await db.release()
    db.dispose()


@pytest.mark.postgres
async def test_a_url_parameter_only_libpq_knows_stops_start_up_with_the_reason(postgres_url: str) -> None:
    db = Database(f"{postgres_url}?keepalives=1")
    db.check()  # libpq takes it
    with pytest.raises(ConfigError, match=r"asyncpg.*keepalives"):
        await db.check_serving()
    await db.release()
    db.dispose()
