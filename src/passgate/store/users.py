"""Users: one row per account, unique name per tenant, an opaque random user handle."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, RowMapping, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from passgate.store.models import users
from passgate.store.records import UserRecord


class NameTaken(Exception):
    """The user name is already used in this tenant."""


def create(
    connection: Connection,
    *,
    tenant_id: str,
    user_name: str,
    display_name: str,
    user_handle: bytes,
    at: float,
) -> UserRecord:
    """Insert a user; raises NameTaken when the name exists (checked by the unique constraint)."""
    values = {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "user_name": user_name,
        "display_name": display_name,
        "user_handle": user_handle,
        "disabled": False,
        "created_at": at,
        "last_seen_at": None,
        "visits": 0,
    }
    try:
        with connection.begin_nested():
            connection.execute(insert(users).values(values))
    except IntegrityError as exc:
        raise NameTaken(user_name) from exc
    return UserRecord(**values)  # type: ignore[arg-type]


def get(connection: Connection, user_id: str) -> UserRecord | None:
    row = connection.execute(select(users).where(users.c.id == user_id)).first()
    return UserRecord(**row._mapping) if row else None


def by_name(connection: Connection, tenant_id: str, user_name: str) -> UserRecord | None:
    row = connection.execute(
        select(users).where(users.c.tenant_id == tenant_id, users.c.user_name == user_name)
    ).first()
    return UserRecord(**row._mapping) if row else None


def name_exists(connection: Connection, tenant_id: str, user_name: str) -> bool:
    query = select(users.c.id).where(users.c.tenant_id == tenant_id, users.c.user_name == user_name)
    return connection.execute(query).first() is not None


def list_all(connection: Connection, tenant_id: str) -> list[UserRecord]:
    rows = connection.execute(select(users).where(users.c.tenant_id == tenant_id).order_by(users.c.user_name))
    return [UserRecord(**row._mapping) for row in rows]


_VISIT = (
    update(users)
    .where(users.c.id == bindparam("uid"))
    .values(visits=users.c.visits + 1, last_seen_at=bindparam("at"))
)


def record_visit(connection: Connection, user_id: str, at: float) -> None:
    connection.execute(_VISIT, {"uid": user_id, "at": at})


def set_disabled(connection: Connection, user_id: str, disabled: bool) -> bool:
    result = connection.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))
    return result.rowcount > 0


def set_display_name(connection: Connection, user_id: str, display_name: str) -> None:
    connection.execute(update(users).where(users.c.id == user_id).values(display_name=display_name))


def remove(connection: Connection, user_id: str) -> bool:
    return connection.execute(delete(users).where(users.c.id == user_id)).rowcount > 0


# A user joined to another table (a session, a credential) comes back under these labels.
JOINED_COLUMNS = [column.label(f"u_{column.name}") for column in users.c]


def joined(mapping: RowMapping) -> UserRecord:
    """The user part of a row selected with JOINED_COLUMNS."""
    return UserRecord(**{name: mapping[f"u_{name}"] for name in UserRecord.__slots__})
