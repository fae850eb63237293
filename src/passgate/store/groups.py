"""User groups: plain (user id, group name) pairs."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from passgate.store.models import user_groups


def for_user(connection: Connection, user_id: str) -> list[str]:
    query = select(user_groups.c.group_name).where(user_groups.c.user_id == user_id)
    return sorted(connection.execute(query).scalars())


def add(connection: Connection, user_id: str, group_name: str) -> bool:
    """Add a membership; False when it already existed."""
    values = {"user_id": user_id, "group_name": group_name}
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(user_groups).values(values).on_conflict_do_nothing()
    return connection.execute(statement.returning(user_groups.c.group_name)).first() is not None


def remove(connection: Connection, user_id: str, group_name: str) -> bool:
    statement = delete(user_groups).where(
        user_groups.c.user_id == user_id, user_groups.c.group_name == group_name
    )
    return connection.execute(statement).rowcount > 0
