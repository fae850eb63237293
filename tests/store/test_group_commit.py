"""SQLite's group commit: the write units that arrive within one turn of the event loop share one
transaction, each in a savepoint of its own (store/database.py, `Database.run`).

Each test gathers units with `asyncio.gather`, which starts them all in the same turn."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from appkit import statements
from passgate.errors import BadRequest, DatabaseUnavailable
from passgate.store.database import Database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'group.db'}", timeout=2.0)
    database.transact(
        lambda connection: connection.execute(text("CREATE TABLE marks (value INTEGER UNIQUE)"))
    )
    yield database
    database.dispose()


def insert(value: int) -> Callable[[Connection], int]:
    def work(connection: Connection) -> int:
        connection.exec_driver_sql("INSERT INTO marks VALUES (?)", (value,))
        return value

    return work


def marks(database: Database) -> list[int]:
    rows = database.transact(lambda connection: connection.execute(text("SELECT value FROM marks")).all())
    return sorted(row[0] for row in rows)


async def test_units_of_one_turn_commit_once(database: Database) -> None:
    await database.run(insert(0))
    seen = statements(database)
    assert await asyncio.gather(*(database.run(insert(value)) for value in range(1, 6))) == [1, 2, 3, 4, 5]
    assert seen.count("COMMIT") == 1 and seen.count("BEGIN IMMEDIATE") == 1, seen
    assert marks(database) == [0, 1, 2, 3, 4, 5]
    await database.run(insert(6))  # alone in its turn: no savepoint
    assert seen.count("COMMIT") == 2 and seen[-3:] == [
        "BEGIN IMMEDIATE",
        "INSERT INTO marks VALUES (6)",
        "COMMIT",
    ]


async def test_a_unit_that_raises_rolls_back_its_own_writes_only(database: Database) -> None:
    def insert_then_fail(connection: Connection) -> int:
        insert(2)(connection)
        raise BadRequest("refused after its write")

    outcomes = await asyncio.gather(
        database.run(insert(1)),
        database.run(insert_then_fail),
        database.run(insert(3)),
        return_exceptions=True,
    )
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], BadRequest)
    assert marks(database) == [1, 3]


async def test_a_constraint_violation_fails_its_unit_alone(database: Database) -> None:
    await database.run(insert(1))
    outcomes = await asyncio.gather(
        database.run(insert(2)), database.run(insert(1)), database.run(insert(3)), return_exceptions=True
    )
    assert outcomes[0] == 2 and outcomes[2] == 3
    assert isinstance(outcomes[1], IntegrityError)
    assert marks(database) == [1, 2, 3]
    assert await database.run(insert(4)) == 4  # the connection is still good


async def test_a_returned_refusal_is_returned_not_raised(database: Database) -> None:
    refusal = BadRequest("burnt, and kept with what the unit wrote")

    def refuse(connection: Connection) -> BadRequest:
        insert(5)(connection)
        return refusal

    assert list(await asyncio.gather(database.run(refuse), database.run(insert(6)))) == [refusal, 6]
    assert marks(database) == [5, 6]


async def test_a_database_that_cannot_be_used_fails_every_unit_of_the_turn(database: Database) -> None:
    def disk_fails(connection: Connection) -> int:
        error = sqlite3.OperationalError("disk I/O error")
        error.sqlite_errorcode = 10  # SQLITE_IOERR
        raise DBAPIError.instance("INSERT", None, error, sqlite3.Error)

    outcomes = await asyncio.gather(
        database.run(insert(1)), database.run(disk_fails), database.run(insert(2)), return_exceptions=True
    )
    assert all(isinstance(outcome, DatabaseUnavailable) for outcome in outcomes), outcomes
    assert marks(database) == []  # nothing of the turn was committed
    assert await database.run(insert(3)) == 3  # a new connection serves the next turn


async def test_a_savepoint_that_fails_fails_the_turn_with_sqlalchemys_error(database: Database) -> None:
    """A driver error at the group's own `SAVEPOINT`/`RELEASE` is raised as SQLAlchemy's, so the
    unit-of-work boundary translates it like any statement's (a disk error there would be a 503)."""

    def loses_the_savepoint(connection: Connection) -> int:
        connection.exec_driver_sql("RELEASE SAVEPOINT unit")  # the group's RELEASE then finds none
        return 0

    outcomes = await asyncio.gather(
        database.run(insert(1)), database.run(loses_the_savepoint), return_exceptions=True
    )
    assert all(isinstance(outcome, DBAPIError) for outcome in outcomes), outcomes
    assert marks(database) == []  # nothing of the turn was committed
    assert await database.run(insert(3)) == 3


async def test_a_turn_waits_for_the_lock_together_and_commits_once(
    database: Database, tmp_path: Path
) -> None:
    await database.run(insert(0))
    seen = statements(database)
    holder = sqlite3.connect(tmp_path / "group.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    turn = asyncio.gather(*(database.run(insert(value)) for value in (1, 2, 3)))
    await asyncio.sleep(0.1)
    assert not turn.done()
    holder.execute("ROLLBACK")
    assert await turn == [1, 2, 3]
    assert seen.count("COMMIT") == 1
    assert marks(database) == [0, 1, 2, 3]
