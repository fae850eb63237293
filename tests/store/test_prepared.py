"""Prepared statements (store/prepared.py) and the event loop's units of work (store/database.py) on
SQLite and PostgreSQL: the values come back as SQLAlchemy would give them, driver errors keep their
SQLAlchemy names, a savepoint undoes only its own part, and `Database.version` moves whenever the
database may have changed."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Iterator

import anyio
import pytest
from sqlalchemy import Connection, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from passgate.store import revocations
from passgate.store.database import Database
from passgate.store.models import BUILTIN_TENANT, challenges
from passgate.store.prepared import Prepared, in_order, savepoint
from passgate.store.records import ChallengeRecord

INSERT = Prepared(insert(challenges))
CONSUME = Prepared(
    delete(challenges)
    .where(challenges.c.challenge == bindparam("c"))
    .returning(*in_order(challenges, ChallengeRecord.__slots__))
)
COUNT_PURPOSE = Prepared(select(challenges.c.challenge).where(challenges.c.purpose == bindparam("p")))
RENAME = Prepared(update(challenges).where(challenges.c.purpose == bindparam("p")).values(purpose="renamed"))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def _row(challenge: bytes, purpose: str = "login") -> dict[str, object]:
    return {
        "challenge": challenge,
        "purpose": purpose,
        "tenant_id": BUILTIN_TENANT,
        "user_id": None,
        "session_id": None,
        "state": {"allowed": ["a", "b"], "require_uv": True, "origin": None},
        "expires_at": time.time() + 60,
    }


def test_values_come_back_typed_as_sqlalchemy_gives_them(db: Database) -> None:
    challenge = os.urandom(32)

    def work(connection: Connection) -> tuple[object, ...] | None:
        INSERT.execute(connection, _row(challenge))
        return CONSUME.first(connection, {"c": challenge})

    row = db.transact(work)
    assert row is not None
    record = ChallengeRecord(*row)  # type: ignore[arg-type]
    assert record.challenge == challenge and isinstance(record.challenge, bytes)
    assert record.state == {"allowed": ["a", "b"], "require_uv": True, "origin": None}  # JSON decoded
    assert db.transact(lambda connection: CONSUME.first(connection, {"c": challenge})) is None  # gone


def test_rowcount_and_compiled_in_values(db: Database) -> None:
    purpose = f"p{os.urandom(4).hex()}"

    def work(connection: Connection) -> int:
        INSERT.execute(connection, _row(os.urandom(32), purpose))
        INSERT.execute(connection, _row(os.urandom(32), purpose))
        return RENAME.rowcount(connection, {"p": purpose})

    assert db.transact(work) == 2
    assert db.transact(lambda connection: COUNT_PURPOSE.all(connection, {"p": "renamed"}))


def test_driver_errors_keep_their_sqlalchemy_names_and_a_savepoint_undoes_only_its_part(db: Database) -> None:
    kept, duplicate, purpose = os.urandom(32), os.urandom(32), f"p{os.urandom(4).hex()}"

    def work(connection: Connection) -> None:
        INSERT.execute(connection, _row(kept, purpose))
        INSERT.execute(connection, _row(duplicate, purpose))
        with pytest.raises(IntegrityError), savepoint(connection):
            INSERT.execute(connection, _row(os.urandom(32), purpose))  # undone with the failure below
            INSERT.execute(connection, _row(duplicate, purpose))

    db.transact(work)
    found = db.transact(lambda connection: COUNT_PURPOSE.all(connection, {"p": purpose}))
    assert sorted(found) == sorted([(kept,), (duplicate,)])


def test_a_failed_unit_of_work_on_the_event_loop_leaves_nothing(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/passgate.db")
    db.migrate()
    challenge = os.urandom(32)

    def failing(connection: Connection) -> None:
        INSERT.execute(connection, _row(challenge))
        raise RuntimeError("a bug after a write")

    with pytest.raises(RuntimeError):
        asyncio.run(db.run(failing))
    # SQLAlchemy's own statements join the driver's transaction and commit with it
    asyncio.run(db.run(lambda connection: connection.execute(insert(challenges).values(_row(challenge)))))
    assert db.transact(lambda connection: CONSUME.first(connection, {"c": challenge})) is not None
    db.dispose()


async def _eventually(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.002)):
        if condition():
            return
        await anyio.sleep(0.002)
    raise AssertionError(f"not within {seconds} s")


async def test_the_version_moves_with_every_change_and_only_then(tmp_path: object) -> None:
    path = f"{tmp_path}/passgate.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    assert db.version() is None  # nobody watches for other processes' commits: nothing can be known

    async def watch() -> None:
        async for _ in revocations.follow(db, 0.005):
            pass

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        await _eventually(lambda: db.version() is not None)
        first = db.version()
        await db.run(lambda connection: COUNT_PURPOSE.all(connection, {"p": "x"}), write=False)
        await anyio.sleep(0.05)
        assert db.version() == first  # reads change nothing
        await db.run(lambda connection: INSERT.execute(connection, _row(os.urandom(32))))
        second = db.version()
        assert second != first  # this process's own write, at once
        await anyio.sleep(0.05)
        settled = db.version()
        other = sqlite3.connect(path, isolation_level=None)  # another process, as far as SQLite can tell
        other.execute("DELETE FROM challenges")
        other.close()
        await _eventually(lambda: db.version() != settled)  # within the poll interval
        tasks.cancel_scope.cancel()
    assert db.version() is None  # the watch ended
    db.dispose()


@pytest.mark.postgres
async def test_postgresql_version_moves_when_sessions_or_users_change(postgres_url: str) -> None:
    """Its follower hears what other connections commit to sessions and users (triggers, migration
    0011): the reads kept under the mark are of those tables; and with no word for a second it moves
    the mark anyway."""
    db = Database(postgres_url)
    db.migrate()
    other = Database(postgres_url)  # another process, as far as PostgreSQL can tell
    assert db.version() is None

    async def watch() -> None:
        async for _ in revocations.follow(db, 0.005):
            pass

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        await _eventually(lambda: db.version() is not None)
        await anyio.sleep(0.1)
        for _ in range(3):  # a quiet second, or any other process's sweep, may move it meanwhile: not always
            first = db.version()
            await db.run(lambda connection: COUNT_PURPOSE.all(connection, {"p": "x"}), write=False)
            await anyio.to_thread.run_sync(other.transact, lambda c: INSERT.execute(c, _row(os.urandom(32))))
            await anyio.sleep(0.1)
            if db.version() == first:
                break
        else:
            raise AssertionError("a read, or a write to another table, moved the mark")
        for statement in (  # (statements that match no row still tell: the triggers are per statement)
            "UPDATE users SET display_name = 'e' WHERE id = 'none'",
            "UPDATE sessions SET last_seen_at = 0 WHERE id = 'none'",
            "DELETE FROM sessions WHERE id = 'none'",
        ):
            settled = db.version()
            await anyio.to_thread.run_sync(other.transact, lambda c, sql=statement: c.execute(text(sql)))
            await _eventually(lambda mark=settled: db.version() != mark)
        settled = db.version()
        await db.run(lambda connection: INSERT.execute(connection, _row(os.urandom(32))))
        assert db.version() != settled  # this process's own write, at once
        # No notification at all (a pooler that drops them): nothing is kept longer than a second.
        drop = text("DROP TRIGGER users_changed ON users")
        await anyio.to_thread.run_sync(other.transact, lambda c: c.execute(drop))
        await anyio.sleep(0.05)
        settled = db.version()
        await _eventually(lambda: db.version() != settled, seconds=2.5)
        tasks.cancel_scope.cancel()
    assert db.version() is None  # the watch ended
    db.dispose()
    other.dispose()
