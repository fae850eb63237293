"""Migration 0012: on SQLite the challenges table becomes WITHOUT ROWID (one B-tree), keeping the
challenges of ceremonies under way; it downgrades; PostgreSQL is left as it was."""

from __future__ import annotations

import sqlalchemy as sa

from migrating import alembic
from passgate.store import challenges
from passgate.store.database import Database

CHALLENGE = b"c" * 32


def _definition(database: Database) -> str:
    with database.engine.connect() as connection:
        found = connection.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'challenges'"))
        return str(found.scalar_one())


def test_0012_keeps_every_challenge_in_one_btree(empty_url: str) -> None:
    database = Database(empty_url)
    alembic(database, "upgrade", "0011")
    with database.engine.begin() as connection:  # a ceremony under way, stored as 0011 stored it
        challenges.create(
            connection,
            challenge=CHALLENGE,
            purpose="login",
            tenant_id="default",
            expires_at=2e9,
            state={"origin": "https://example.com"},
        )

    database.migrate()
    with database.engine.begin() as connection:
        record = challenges.peek(connection, CHALLENGE)
        assert record is not None and record.state == {"origin": "https://example.com"}
        assert record.purpose == "login" and record.expires_at == 2e9
    if database.is_sqlite:
        assert _definition(database).endswith("WITHOUT ROWID")

    alembic(database, "downgrade", "0011")
    with database.engine.begin() as connection:
        assert challenges.consume(connection, CHALLENGE, 0.0) is not None  # still there, still usable
    if database.is_sqlite:
        assert not _definition(database).endswith("WITHOUT ROWID")
    database.dispose()
