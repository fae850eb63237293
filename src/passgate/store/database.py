"""The database: SQLAlchemy engines (sqlite3; on PostgreSQL asyncpg for the server, psycopg 3 for the
rest), migrations, and units of work.

A unit of work is a plain function over a `Connection`, run on the event loop; a write unit is one
transaction.

- PostgreSQL: through asyncpg. SQLAlchemy's asyncio extension runs the plain function in a greenlet
  (`AsyncConnection.run_sync`), and each statement awaits its round trip without a thread. A read
  unit's statements run without `BEGIN` and `COMMIT`: each is its own transaction, as under READ
  COMMITTED each statement reads its own snapshot anyway; so do a write unit's when its statements need
  not stand or fall together (`run(atomic=False)`: storing a ceremony's challenge). (A worker thread
  per unit of work cost more: at 8 units in flight, threads handing the GIL to each other at every
  round trip took about twice the CPU of the same unit on the loop; and asyncpg's round trip costs the
  client less than half of psycopg's asyncio one: docs/performance.md.) Code run outside the server
  (the command line, migrations, the follower's first read) uses a plain psycopg engine,
  `Database.transact`.
- SQLite: right on the event loop's own connection, statements take microseconds. The write units that
  arrive within one turn of the event loop commit together (group commit): one `BEGIN IMMEDIATE` and
  one `COMMIT` for all of them, each unit in a savepoint of its own, so that one that fails rolls back
  its own writes only. At 8 concurrent sign-ins that about halves the commits, and the write-lock
  acquisitions that several workers contend for.

Bad moments fail closed and never stall the event loop:

- SQLite's write lock held by another process (or another worker): the event loop's connection has no
  busy timeout, so `BEGIN IMMEDIATE` answers SQLITE_BUSY at once and nothing waits on the loop (SQLite's
  own busy handler would sleep right there, freezing every request of the worker). The transaction is
  rolled back and the whole unit of work is tried again *from its start*, between short async sleeps
  (0.5 ms doubling to 20 ms), until `timeout` seconds have passed; then `DatabaseBusy` (503). A unit
  of work is never continued after BUSY, only re-run after a full rollback. No thread hop is paid,
  and a write waiting through a long lock costs a few µs per attempt (a bare-driver probe).
- A driver error that means the database cannot be used (PostgreSQL down or restarting, a connection
  cut, SQLite unable to open, read or write its file): `DatabaseUnavailable` (503). SQLAlchemy
  invalidates the pool on a disconnect and a connection idle in the pool for over a second is tested
  on checkout (`_ping_if_idle`), so service resumes with the first request after the database is
  back, without a restart.

Driver errors are translated here, at the unit-of-work boundary only, so every face (API, pages,
WebSockets, forward-auth) meets them as `PassgateError`s; statements inside a unit of work still see
the driver's own exceptions (e.g. `IntegrityError` for a taken name).
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, InternalError, InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import ConnectionPoolEntry

from passgate.errors import ConfigError, DatabaseBusy, DatabaseUnavailable, PassgateError
from passgate.store.migrations import head_revision
from passgate.store.prepared import execute_sql

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
UnitOfWork = Callable[[Connection], T]
DEFAULT_TIMEOUT = 5.0  # seconds a unit of work may wait for the database (PASSGATE_DATABASE_TIMEOUT)
FIRST_PAUSE, LONGEST_PAUSE = 0.0005, 0.02  # seconds between attempts on a busy SQLite database
MIGRATION_WAIT_MS = 30_000  # workers starting together migrate one after the other
# SQLite result codes (https://www.sqlite.org/rescode.html), primary code = extended code & 0xFF.
SQLITE_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
SQLITE_UNAVAILABLE_CODES = {8, 10, 11, 13, 14, 15, 26}  # READONLY IOERR CORRUPT FULL CANTOPEN PROTOCOL NOTADB
_WHOLE_TURN = SQLITE_BUSY_CODES | SQLITE_UNAVAILABLE_CODES  # a group commit's unit fails them all with these


def make_engine(url: str, timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys, a busy timeout and `BEGIN IMMEDIATE` writes.

    `timeout` bounds the waits a request can meet: SQLite's busy handler, a pool checkout, and a
    PostgreSQL connection attempt."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": timeout}, pool_timeout=timeout
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    libpq = {"connect_timeout": max(2, math.ceil(timeout))}  # libpq's minimum is 2 s
    return _pooled(create_engine(url, connect_args=libpq, **_pool_options(timeout)))


def make_async_engine(url: str, timeout: float = DEFAULT_TIMEOUT) -> AsyncEngine:
    """The PostgreSQL engine of the server's units of work: asyncpg, the same pool settings.
    Imported here: SQLAlchemy's asyncio extension brings its ORM (~9 MB), which SQLite does not need."""
    import asyncpg
    from sqlalchemy.ext.asyncio import create_async_engine

    # asyncpg reads the URL itself, as libpq does: sslmode, sslrootcert, passfile, service,
    # target_session_attrs…; other query parameters (application_name) become server settings.
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    seconds = max(2, math.ceil(timeout))

    async def connect() -> Any:
        try:
            return await asyncpg.connect(dsn, timeout=seconds)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _Unreachable(exc) from exc  # raised as they are by SQLAlchemy, unlike a statement's

    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect, **_pool_options(timeout))
    _pooled(engine.sync_engine)
    return engine


def _pool_options(timeout: float) -> dict[str, Any]:
    return {
        "pool_size": 20,
        "max_overflow": 10,
        "pool_timeout": timeout,
    }


def _pooled(engine: Engine) -> Engine:
    event.listen(engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    event.listen(engine, "checkin", _returned)
    return engine


IDLE_PING = 1.0  # seconds: a pooled PostgreSQL connection idle longer is tested before it is used
_RETURNED = "passgate_returned"  # the pool entry's `info` key: when it was last given back


def _ping_if_idle(dialect: Dialect, dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    """SQLAlchemy's pre-ping (a `SELECT 1` on checkout) for connections that sat idle in the pool over
    `IDLE_PING` seconds only: a connection given back a moment ago is used as it is, without a round
    trip per unit of work. A failed ping invalidates the pool (as the pre-ping does), and the pool
    connects afresh. A connection that died within the last second fails its unit of work instead
    (`DatabaseUnavailable`, which also invalidates the pool): the database went away while it was in
    use, as it may during any unit of work."""
    returned = record.info.get(_RETURNED)
    if returned is None or time.monotonic() - returned <= IDLE_PING:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as exc:
        raise InvalidatePoolError(f"pooled connection failed its ping: {exc}") from exc


def _returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_RETURNED] = time.monotonic()


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN itself
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"):
        dbapi_connection.execute(pragma)


def _sqlite_begin(connection: Connection) -> None:
    # Writers take the lock up front: SQLITE_BUSY comes at BEGIN, before the unit of work has done
    # anything, instead of at its first write.
    # On the driver: `exec_driver_sql` would add SQLAlchemy's per-statement work to every unit of work.
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    if driver.in_transaction:
        return  # a unit of work on the event loop began it (`Database._transact_on_loop`)
    statement = "BEGIN IMMEDIATE" if connection.get_execution_options().get("write", True) else "BEGIN"
    try:
        driver.execute(statement)
    except sqlite3.Error as exc:  # raised inside an event, which SQLAlchemy does not wrap
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc


def _set_busy_timeout(connection: Connection, milliseconds: int) -> None:
    """SQLite's busy handler for this connection, set on the driver connection (no transaction)."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    driver.execute(f"PRAGMA busy_timeout={max(0, int(milliseconds))}")


class Database:
    """Runs units of work; the only way the services touch storage."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT):
        self.url = url
        self.timeout = timeout
        self.engine = make_engine(url, timeout)
        self.is_sqlite = url.startswith("sqlite")
        self._loop_connection: Connection | None = None  # SQLite: the event loop's own connection
        self._gathered: list[_Waiting] = []  # SQLite: write units waiting for this loop turn's commit
        self._waiting: set[asyncio.Task[None]] = set()  # SQLite: gathered turns waiting for the lock
        # PostgreSQL: the server's units of work, made on first use: the engine of write units, and a view
        # of it for units without a transaction (the same pool, each connection in autocommit while it
        # serves one): read units, and write units run with `atomic=False`.
        self._on_loop: tuple[AsyncEngine, AsyncEngine] | None = None
        # Bumped by every write unit of work of this process and, while a follower watches SQLite for
        # other connections' commits (store/revocations.py `follow`), by each of those: see `version`.
        self.generation = 0
        self.followed = False

    def version(self) -> int | None:
        """A mark that differs whenever the database may have changed since it was taken, or None when
        nothing can tell (no follower running): then read again.

        This process's own writes move it at once; another process's commit moves it when the follower
        (store/revocations.py) hears of it: on SQLite when `PRAGMA data_version` changes, within its
        poll interval (a few milliseconds); on PostgreSQL when a commit that wrote sessions or users
        notifies it (migration 0011). Asking costs nothing: no statement per request."""
        return self.generation if self.followed else None

    def changed(self) -> None:
        self.generation += 1

    def transact(self, work: UnitOfWork[T], *, write: bool = True) -> T:
        """Run `work` in one transaction on this thread; commit on success, roll back on error.

        Driver errors that mean "busy" or "unavailable" become `DatabaseBusy` / `DatabaseUnavailable`."""
        if write:
            self.changed()
        try:
            with self.engine.connect().execution_options(write=write) as connection, connection.begin():
                return work(connection)
        except (DBAPIError, PoolTimeout) as exc:
            raise self._translate(exc) from exc

    async def run(self, work: UnitOfWork[T], *, write: bool = True, atomic: bool = True) -> T:
        """Run `work` on the event loop, a write unit in one transaction: inline on SQLite; on
        PostgreSQL in a greenlet whose statements await their round trips (`_run_async`).

        On SQLite the write units that arrive within one turn of the event loop share one transaction
        (group commit, `_commit_gathered`): each runs in a savepoint of its own, so what one raises
        rolls back its writes alone, and every caller resumes once the one `COMMIT` is done.

        `atomic=False` is for a write unit whose statements need not stand or fall together (a single
        `INSERT`, or a check the database enforces again later): on PostgreSQL each statement then
        commits on its own, without the `BEGIN` and `COMMIT` round trips, as a read unit's do."""
        if not self.is_sqlite:
            return await self._run_async(work, write, atomic)
        if write:
            return await self._gather(work)
        try:
            return self._transact_on_loop(work, write)
        except _Busy:
            return await self._retry_on_loop(work, write)

    async def _run_async(self, work: UnitOfWork[T], write: bool, atomic: bool) -> T:
        if self._on_loop is None:
            engine = make_async_engine(self.url, self.timeout)
            self._on_loop = (engine, engine.execution_options(isolation_level="AUTOCOMMIT"))
        transactions, statements = self._on_loop
        if write:
            self.changed()
        one_transaction = write and atomic
        try:
            async with (transactions if one_transaction else statements).connect() as connection:
                try:
                    if one_transaction:
                        return await connection.run_sync(_in_transaction, work)
                    # A read unit's statements (or a write unit's that need not stand or fall together)
                    # each commit on their own: no BEGIN and COMMIT round trips. Under READ COMMITTED
                    # every statement of a transaction takes a new snapshot anyway.
                    return await connection.run_sync(work)
                except DBAPIError as exc:
                    # Never back to the pool: a prepared statement's error (store/prepared.py) does not
                    # pass through SQLAlchemy's own disconnect check.
                    if _lost(exc) and not connection.invalidated:
                        await connection.invalidate()
                    raise
        except (DBAPIError, PoolTimeout) as exc:
            raise self._translate(exc) from exc
        except _Unreachable as exc:
            raise DatabaseUnavailable(detail=f"PostgreSQL: {exc}") from exc

    async def release(self) -> None:
        """Close the connections of the PostgreSQL units of work run so far; they belong to the event
        loop that opened them (the app's lifespan calls this as it ends). The next unit opens new ones."""
        engines, self._on_loop = self._on_loop, None
        if engines is not None:
            await engines[0].dispose()  # the pool both share

    def _gather(self, work: UnitOfWork[T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(work, loop.create_future())
        self._gathered.append(waiting)
        if len(self._gathered) == 1:
            loop.call_soon(self._commit_gathered)
        return waiting.future

    def _commit_gathered(self) -> None:
        """Run the write units gathered in this loop turn in one transaction and hand each its outcome;
        when another connection holds the write lock, wait for it as a single unit of work would."""
        gathered, self._gathered = self._gathered, []
        work = functools.partial(_each_in_savepoint, gathered)
        try:
            outcomes: list[Any] | _Failed = self._transact_on_loop(work, True)
        except _Busy:
            waiting = asyncio.get_running_loop().create_task(self._commit_when_free(gathered, work))
            self._waiting.add(waiting)  # a reference until it is done (asyncio keeps only a weak one)
            waiting.add_done_callback(self._waiting.discard)
            return
        except BaseException as exc:
            outcomes = _Failed(exc)
        _hand_out(gathered, outcomes)

    async def _commit_when_free(self, gathered: list[_Waiting], work: UnitOfWork[list[Any]]) -> None:
        try:
            outcomes: list[Any] | _Failed = await self._retry_on_loop(work, True)
        except BaseException as exc:
            outcomes = _Failed(exc)
        _hand_out(gathered, outcomes)

    async def _retry_on_loop(self, work: UnitOfWork[T], write: bool) -> T:
        """SQLite was busy: try again until `timeout`, sleeping between attempts without holding the loop.

        Each attempt is a fresh transaction that gets the lock at once or fails at once (BUSY rolled
        the last one back: nothing is kept between attempts). A write first probes the lock with the
        bare driver (a few µs when it is still taken, against ~70 µs for a failed unit of work)."""
        deadline = time.monotonic() + self.timeout
        pause = FIRST_PAUSE
        while (remaining := deadline - time.monotonic()) > 0:
            await anyio.sleep(min(pause, remaining))
            pause = min(pause * 2, LONGEST_PAUSE)
            if write and not self._write_lock_free():
                continue
            try:
                return self._transact_on_loop(work, write)
            except _Busy:
                continue
        raise DatabaseBusy(detail=f"SQLite stayed locked by another connection for {self.timeout:g} s")

    def _write_lock_free(self) -> bool:
        """Whether SQLite's write lock could be taken just now (taken and given back at once)."""
        connection = self._loop_connection
        if connection is None or connection.closed or connection.invalidated:
            return True  # let the attempt open the connection
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        try:
            driver.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", 5)
            return not isinstance(code, int) or code & 0xFF not in SQLITE_BUSY_CODES  # others: let it fail
        driver.execute("ROLLBACK")
        return True

    def _transact_on_loop(self, work: UnitOfWork[T], write: bool) -> T:
        """SQLite on the event loop keeps one connection (no pool round trip per unit of work), with no
        busy timeout: a locked database raises `_Busy` at once instead of blocking the loop.

        The transaction is the driver's own `BEGIN` … `COMMIT` (SQLAlchemy's transaction bookkeeping
        cost more than the statements of a sign-in). A statement run through SQLAlchemy itself inside
        the unit of work begins SQLAlchemy's transaction on top of it (`_sqlite_begin` then adds no
        `BEGIN`), and that one commits or rolls back the whole."""
        connection = self._loop_connection
        if connection is None or connection.closed or connection.invalidated:
            connection = self._open_loop_connection()
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        if write:
            self.changed()  # before it runs: a mark taken now is already out of date
        try:
            try:
                driver.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise DBAPIError.instance("BEGIN", None, exc, sqlite3.Error) from exc
            try:
                result = work(connection)
            except BaseException:
                if connection.in_transaction():
                    connection.rollback()
                elif driver.in_transaction:
                    driver.execute("ROLLBACK")
                raise
            if connection.in_transaction():
                connection.commit()
            else:
                try:
                    driver.execute("COMMIT")
                except sqlite3.Error as exc:
                    if driver.in_transaction:
                        driver.execute("ROLLBACK")
                    raise DBAPIError.instance("COMMIT", None, exc, sqlite3.Error) from exc
            return result
        except DBAPIError as exc:
            if _sqlite_code(exc) in SQLITE_BUSY_CODES:
                raise _Busy from exc  # the transaction was rolled back; the connection stays good
            self._drop_loop_connection()
            raise self._translate(exc) from exc

    def _open_loop_connection(self) -> Connection:
        try:
            connection = self.engine.connect()
            _set_busy_timeout(connection, 0)
        except DBAPIError as exc:
            if _sqlite_code(exc) in SQLITE_BUSY_CODES:
                raise _Busy from exc
            raise self._translate(exc) from exc
        self._loop_connection = connection
        return connection

    def _drop_loop_connection(self) -> None:
        connection, self._loop_connection = self._loop_connection, None
        if connection is not None:
            connection.invalidate()  # never back to the pool with no busy timeout

    def _translate(self, exc: DBAPIError | PoolTimeout) -> PassgateError | DBAPIError:
        """The error tree's name for a driver error; other errors (bugs) are returned unchanged."""
        if isinstance(exc, PoolTimeout):
            return DatabaseBusy(detail=f"no database connection free within {self.timeout:g} s")
        reason = _first_line(exc.orig)
        if self.is_sqlite:
            code = _sqlite_code(exc)
            if code in SQLITE_BUSY_CODES:
                return DatabaseBusy(detail=f"SQLite: {reason} (waited {self.timeout:g} s)")
            if code in SQLITE_UNAVAILABLE_CODES:
                return DatabaseUnavailable(detail=f"SQLite: {reason}")
            return exc
        if _transient_conflict(exc):
            return DatabaseBusy(detail=f"PostgreSQL: {reason}")
        if _lost(exc) or isinstance(exc, OperationalError):
            return DatabaseUnavailable(detail=f"PostgreSQL: {reason}")
        return exc

    def check(self) -> None:
        """Fail with a ConfigError naming the fix when the database cannot be reached."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError) as exc:
            raise ConfigError(
                f"Cannot reach the database at {self.safe_url()}: {_first_line(exc.orig)}. "
                "Check PASSGATE_DATABASE_URL (host, port, user, database name) and that the server runs."
            ) from None

    async def check_serving(self) -> None:
        """On PostgreSQL, that the server's own driver (asyncpg) connects with the URL too: a query
        parameter that libpq takes and asyncpg does not stops start-up here, instead of every request."""
        if self.is_sqlite:
            return
        try:
            await self.run(lambda _connection: None, write=False)
        except DatabaseUnavailable as exc:
            raise ConfigError(
                f"Cannot reach the database at {self.safe_url()} with asyncpg: {exc.detail}. Check "
                "PASSGATE_DATABASE_URL's query parameters (asyncpg reads sslmode, sslrootcert, sslcert, "
                "sslkey, passfile, service and target_session_attrs, and sends others to the server as "
                "settings, such as application_name)."
            ) from None

    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent; safe with several processes). A database
        already there is left alone without importing Alembic (a few hundred ms of every start)."""
        if self.at_head():
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(files("passgate.store") / "migrations"))
        with self.engine.connect() as connection:
            if self.is_sqlite:
                _set_busy_timeout(connection, MIGRATION_WAIT_MS)
            with connection.begin():
                if not self.is_sqlite:
                    connection.execute(text("SELECT pg_advisory_xact_lock(724190)"))
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            if self.is_sqlite:
                _set_busy_timeout(connection, round(self.timeout * 1000))

    def migrate_apart(self) -> None:
        """`migrate` in a forked child process, for a process that goes on to serve: Alembic and the
        migration scripts (~10 MB) stay out of it. Call it before any thread starts (a fork copies only
        the calling thread); the child opens connections of its own and never touches this one's.
        Raises ConfigError when the child fails (its traceback is on stderr)."""
        if self.at_head():
            return
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            status = 1
            try:
                Database(self.url, timeout=self.timeout).migrate()
                status = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(status)
        _, status = os.waitpid(child, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise ConfigError(f"Migrating the database at {self.safe_url()} failed: see the error above.")

    def at_head(self) -> bool:
        """Whether the database records the newest revision of the migration scripts. Any doubt (no
        table yet, several rows, a revision these scripts do not end with) is a no: Alembic decides."""
        head = head_revision()
        if head is None:
            return False
        try:
            with self.engine.connect().execution_options(write=False) as connection:
                rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError:
            return False
        return [tuple(row) for row in rows] == [(head,)]

    def dispose(self) -> None:
        if self._loop_connection is not None:
            self._loop_connection.invalidate()
            self._loop_connection = None
        self.engine.dispose()
        if self._on_loop is not None:  # outside its event loop: let go of its connections, unclosed
            self._on_loop[0].sync_engine.dispose(close=False)
            self._on_loop = None


@dataclass(slots=True)
class _Waiting:
    """A write unit gathered for the next group commit, and the future its caller awaits."""

    work: UnitOfWork[Any]
    future: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class _Failed:
    """A gathered unit's exception, kept while the other units of its transaction commit."""

    error: BaseException


def _each_in_savepoint(gathered: list[_Waiting], connection: Connection) -> list[Any]:
    """Run each gathered unit of work; alone, as it is; with others, each in a savepoint, so that one
    that raises rolls back its own writes only. An error that means the database cannot be used fails
    them all (the transaction is rolled back)."""
    if len(gathered) == 1:
        return [gathered[0].work(connection)]
    outcomes: list[Any] = []
    for waiting in gathered:
        execute_sql(connection, "SAVEPOINT unit")
        try:
            outcomes.append(waiting.work(connection))
        except Exception as exc:
            if isinstance(exc, DBAPIError) and _sqlite_code(exc) in _WHOLE_TURN:
                raise
            execute_sql(connection, "ROLLBACK TO SAVEPOINT unit")
            outcomes.append(_Failed(exc))
        execute_sql(connection, "RELEASE SAVEPOINT unit")
    return outcomes


def _hand_out(gathered: list[_Waiting], outcomes: list[Any] | _Failed) -> None:
    """Each caller its unit's outcome: what it returned (a returned refusal included), what it raised,
    or the whole transaction's failure."""
    for index, waiting in enumerate(gathered):
        if waiting.future.done():  # its caller was cancelled
            continue
        outcome = outcomes if isinstance(outcomes, _Failed) else outcomes[index]
        if isinstance(outcome, _Failed):
            waiting.future.set_exception(outcome.error)
        else:
            waiting.future.set_result(outcome)


class _Unreachable(Exception):
    """asyncpg could not open a connection (refused, timed out, or turned away by the server)."""

    def __init__(self, cause: BaseException):
        super().__init__(_first_line(cause))


class _Busy(Exception):
    """SQLite answered BUSY on the event loop's connection; the unit of work was rolled back."""


def _sqlite_code(exc: DBAPIError) -> int | None:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    if isinstance(exc.orig, sqlite3.OperationalError) and "locked" in str(exc.orig):
        return 5  # Python builds without error codes: "database is locked"
    return None


def _transient_conflict(exc: DBAPIError) -> bool:
    """PostgreSQL serialization failure or deadlock (class 40), statement timeout (57014) or lock not
    available (55P03): the database is up but busy. By SQLSTATE, which psycopg's and asyncpg's errors
    both carry (https://www.postgresql.org/docs/current/errcodes-appendix.html)."""
    code = _sqlstate(exc)
    return code is not None and (code.startswith("40") or code in ("57014", "55P03"))


def _lost(exc: DBAPIError) -> bool:
    """The PostgreSQL connection is gone or cannot be trusted: SQLAlchemy saw a disconnect, the driver
    says the connection is closed, the server sent a connection exception (SQLSTATE class 08) or is
    shutting down (57P01-3), or the driver lost track of its own protocol (an internal error without a
    SQLSTATE, as asyncpg may raise when the server ends a connection between two statements)."""
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    code = _sqlstate(exc)
    if code is not None:
        return code.startswith("08") or code.startswith("57P")
    return isinstance(exc, InternalError)


def _sqlstate(exc: DBAPIError) -> str | None:
    code = getattr(exc.orig, "sqlstate", None)
    return code if isinstance(code, str) else None


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _in_transaction(connection: Connection, work: UnitOfWork[T]) -> T:
    with connection.begin():
        return work(connection)


def now() -> float:
    return time.time()
