"""PostgreSQL's connection pool: a connection given back a moment ago is used without a `SELECT 1`
first; one idle for longer is tested, and replaced when the server ended it meanwhile."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from passgate.store import database
from passgate.store.database import Database

pytestmark = pytest.mark.postgres


def _backend_pid(db: Database) -> int:
    pid = db.transact(lambda connection: connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
    return int(pid)


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
