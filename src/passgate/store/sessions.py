"""Sessions: server-side rows that a signed cookie token points to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from passgate.store import users as user_rows
from passgate.store.models import sessions, users
from passgate.store.prepared import Prepared, in_order
from passgate.store.records import SessionRecord, UserRecord

_INSERT = Prepared(insert(sessions))
_WITH_USER = Prepared(
    select(*in_order(sessions, SessionRecord.__slots__), *user_rows.JOINED_COLUMNS)
    .join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.id == bindparam("sid"))
)
_TOUCH = Prepared(
    update(sessions).where(sessions.c.id == bindparam("sid")).values(last_seen_at=bindparam("at"))
)
_SESSION_WIDTH = len(SessionRecord.__slots__)


def create(connection: Connection, record: SessionRecord) -> None:
    _INSERT.execute(connection, {name: getattr(record, name) for name in record.__slots__})


def get_with_user(connection: Connection, session_id: str) -> tuple[SessionRecord, UserRecord] | None:
    """The session and its user in one statement (the hot path of every signed-in request)."""
    row = _WITH_USER.first(connection, {"sid": session_id})
    if row is None:
        return None
    return SessionRecord(*row[:_SESSION_WIDTH]), user_rows.joined(row)


def for_user(connection: Connection, user_id: str) -> list[SessionRecord]:
    rows = connection.execute(
        select(sessions).where(sessions.c.user_id == user_id).order_by(sessions.c.last_seen_at.desc())
    )
    return [SessionRecord(**row._mapping) for row in rows]


def touch(connection: Connection, session_id: str, at: float) -> None:
    _TOUCH.execute(connection, {"sid": session_id, "at": at})


def refresh_auth(connection: Connection, session_id: str, values: dict[str, Any]) -> None:
    connection.execute(update(sessions).where(sessions.c.id == session_id).values(values))


def remove(connection: Connection, session_id: str, user_id: str) -> bool:
    result = connection.execute(
        delete(sessions).where(sessions.c.id == session_id, sessions.c.user_id == user_id)
    )
    return result.rowcount > 0


def remove_all(connection: Connection, user_id: str, *, credential_id: bytes | None = None) -> list[str]:
    """End every session of a user (or only those opened or last confirmed with one passkey); their ids."""
    query = delete(sessions).where(sessions.c.user_id == user_id)
    if credential_id is not None:
        query = query.where(sessions.c.credential_id == credential_id)
    return list(connection.execute(query.returning(sessions.c.id)).scalars())


def remove_expired(connection: Connection, now: float, idle_before: float) -> int:
    query = delete(sessions).where((sessions.c.expires_at <= now) | (sessions.c.last_seen_at <= idle_before))
    return connection.execute(query).rowcount
