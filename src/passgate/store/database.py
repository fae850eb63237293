"""The database: one SQLAlchemy engine (sqlite3 or psycopg 3), migrations, and units of work.

A unit of work is a plain function over a `Connection`, run in one transaction. On PostgreSQL it runs
on a worker thread: one hop per unit of work instead of one per statement (an async driver hops per
statement). On SQLite it runs right on the event loop: statements take microseconds, and a thread hop
would cost more than the work (see docs/performance.md).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from passgate.errors import ConfigError

T = TypeVar("T")
UnitOfWork = Callable[[Connection], T]


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys, a busy timeout and `BEGIN IMMEDIATE` writes."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN itself
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
    ):
        dbapi_connection.execute(pragma)


def _sqlite_begin(connection: Connection) -> None:
    # Writers take the lock up front: a deferred transaction that later writes can fail with
    # SQLITE_BUSY instead of waiting for the busy timeout.
    write = connection.get_execution_options().get("write", True)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """Runs units of work; the only way the services touch storage."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self._loop_connection: Connection | None = None  # SQLite: the event loop's own connection

    def transact(self, work: UnitOfWork[T], *, write: bool = True) -> T:
        """Run `work` in one transaction on this thread; commit on success, roll back on error."""
        with self.engine.connect().execution_options(write=write) as connection, connection.begin():
            return work(connection)

    async def run(self, work: UnitOfWork[T], *, write: bool = True) -> T:
        """Run `work` in one transaction: inline on SQLite, on a worker thread otherwise."""
        if self.is_sqlite:
            return self._transact_on_loop(work, write)
        return await anyio.to_thread.run_sync(_call_transact, self, work, write)

    def _transact_on_loop(self, work: UnitOfWork[T], write: bool) -> T:
        """SQLite on the event loop keeps one connection (no pool round trip per unit of work)."""
        connection = self._loop_connection
        if connection is None or connection.closed or connection.invalidated:
            connection = self._loop_connection = self.engine.connect()
        connection.execution_options(write=write)
        try:
            with connection.begin():
                return work(connection)
        except (OperationalError, DBAPIError):
            connection.close()
            self._loop_connection = None
            raise

    def check(self) -> None:
        """Fail with a ConfigError naming the fix when the database cannot be reached."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError) as exc:
            raise ConfigError(
                f"Cannot reach the database at {self.safe_url()}: {str(exc.orig).strip().splitlines()[0]}. "
                "Check PASSGATE_DATABASE_URL (host, port, user, database name) and that the server runs."
            ) from None

    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent; safe with several processes)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(files("passgate.store") / "migrations"))
        with self.engine.begin() as connection:
            if not self.is_sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(724190)"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        if self._loop_connection is not None:
            self._loop_connection.close()
            self._loop_connection = None
        self.engine.dispose()


def _call_transact(database: Database, work: UnitOfWork[Any], write: bool) -> Any:
    return database.transact(work, write=write)


def now() -> float:
    return time.time()
