"""The revocation log: one row per ended session, or per user whose every session (and what a process
remembers of them: groups, disabled state) must be read again. Other processes read it to forget."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from sqlalchemy import Connection, bindparam, delete, func, insert, select, text

from passgate.store.database import Database
from passgate.store.models import revocations

CHANNEL = "passgate_revocations"  # PostgreSQL NOTIFY channel: wakes every listening process
CHANGED = "passgate_changed"  # PostgreSQL: notified by triggers on commits that wrote sessions or users
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', '')")
Entry = tuple[int, str, str | None]  # id, user id, session id (None: all of the user's)


def record(connection: Connection, user_id: str, session_ids: list[str] | None, at: float) -> None:
    """Log ended sessions (`None`: everything the user's sessions were); wakes listeners on commit."""
    ids: list[str | None] = list(session_ids) if session_ids is not None else [None]
    rows = [{"at": at, "user_id": user_id, "session_id": sid} for sid in ids]
    connection.execute(insert(revocations), rows)
    if connection.dialect.name == "postgresql":
        connection.execute(_NOTIFY)  # delivered when (and only if) the transaction commits


_SINCE = (
    select(revocations.c.id, revocations.c.user_id, revocations.c.session_id)
    .where(revocations.c.id > bindparam("after"))
    .order_by(revocations.c.id)
)


def since(connection: Connection, after: int) -> list[Entry]:
    """Entries newer than `after`, oldest first."""
    return [(row.id, row.user_id, row.session_id) for row in connection.execute(_SINCE, {"after": after})]


def latest(connection: Connection) -> int:
    return int(connection.execute(select(func.coalesce(func.max(revocations.c.id), 0))).scalar_one())


def sweep(connection: Connection, before: float) -> int:
    return connection.execute(delete(revocations).where(revocations.c.at < before)).rowcount


async def follow(db: Database, interval: float) -> AsyncIterator[list[Entry]]:
    """Yield the log's entries newer than the newest at subscription, in batches, as they are committed.

    SQLite: `PRAGMA data_version` on a connection of this feed's own changes when any other connection (in
    any process) commits; checking it costs one call on an idle connection every `interval` seconds, and
    new entries are read on the same connection. Each change also moves `Database.version`, which
    lets this process keep reads while the database is unchanged. PostgreSQL: `LISTEN` on a connection
    of its own; `record` notifies on commit, and so do triggers on `sessions` and `users` (migration
    0011), which move `Database.version` likewise, as does every second without a notification.
    Raises when a connection is lost (the caller then forgets everything and follows again); the
    version is not kept meanwhile."""
    query = str(_SINCE.compile(dialect=db.engine.dialect))  # the driver's own placeholders
    if db.is_sqlite:
        with db.engine.connect() as connection:  # a connection of its own, used through the bare driver:
            raw = connection.connection.driver_connection  # a check costs a few µs, not a statement's 50
            assert raw is not None
            version = raw.execute("PRAGMA data_version").fetchone()
            cursor = raw.execute("SELECT coalesce(max(id), 0) FROM revocations").fetchone()[0]
            db.changed()  # anything before this moment is now behind the mark
            db.followed = True
            try:
                while True:
                    await anyio.sleep(interval)
                    now = raw.execute("PRAGMA data_version").fetchone()
                    if now != version:
                        version = now
                        db.changed()  # another connection committed: reads remembered are old
                        rows = raw.execute(query, (cursor,)).fetchall()
                        if rows:
                            cursor = rows[-1][0]
                            yield [(row[0], row[1], row[2]) for row in rows]
            finally:
                db.followed = False
    import psycopg

    conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    async with await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, connect_timeout=5
    ) as listener:
        await listener.execute(f"LISTEN {CHANNEL}")
        await listener.execute(f"LISTEN {CHANGED}")
        cursor = await anyio.to_thread.run_sync(db.transact, latest)
        db.changed()  # anything before this moment is now behind the mark
        db.followed = True
        try:
            while True:
                # Wait for a notification (or a second: one that came while the last read ran may have
                # been answered by it, or not), then read on the listening connection itself.
                revoked = True
                async for note in listener.notifies(timeout=1.0, stop_after=1):
                    revoked = note.channel == CHANNEL
                # Another connection committed, or a second went by without a word: reads remembered
                # are old either way, so a notification lost on the way (a pooler in transaction
                # mode, a connection gone quiet) keeps nothing longer than a second.
                db.changed()
                if not revoked:
                    continue
                rows = await (await listener.execute(query, {"after": cursor})).fetchall()
                if rows:
                    cursor = rows[-1][0]
                    yield [(row[0], row[1], row[2]) for row in rows]
        finally:
            db.followed = False
