"""Users: one row per account, a unique key per tenant (the canonical form of the name, computed by
services/names.py), an opaque random user handle, an optional administrator-set e-mail address."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, bindparam, delete, inspect, select, update
from sqlalchemy.exc import IntegrityError

from passgate.store.models import users
from passgate.store.prepared import NewRow, Prepared, in_order
from passgate.store.records import UserRecord

_INSERT = NewRow(users)


class NameTaken(Exception):
    """The user name's key is already used in this tenant."""


def create(
    connection: Connection,
    *,
    tenant_id: str,
    user_name: str,
    user_key: str,
    display_name: str,
    user_handle: bytes,
    at: float,
) -> UserRecord:
    """Insert a user; raises NameTaken when the key exists (checked by the unique index), after which the
    caller's transaction goes on as it was (`NewRow`)."""
    values = {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "user_name": user_name,
        "user_key": user_key,
        "email": None,
        "display_name": display_name,
        "user_handle": user_handle,
        "disabled": False,
        "created_at": at,
        "last_seen_at": None,
        "visits": 0,
    }
    if not _INSERT.insert(connection, values):
        raise NameTaken(user_name)
    return UserRecord(**values)  # type: ignore[arg-type]


def get(connection: Connection, user_id: str) -> UserRecord | None:
    row = connection.execute(select(users).where(users.c.id == user_id)).first()
    return UserRecord(**row._mapping) if row else None


_IN_TENANT_BY_KEY = (users.c.tenant_id == bindparam("tenant"), users.c.user_key == bindparam("key"))
_BY_KEY = Prepared(select(*in_order(users, UserRecord.__slots__)).where(*_IN_TENANT_BY_KEY))
_KEY_EXISTS = Prepared(select(users.c.id).where(*_IN_TENANT_BY_KEY))


def by_key(connection: Connection, tenant_id: str, user_key: str) -> UserRecord | None:
    row = _BY_KEY.first(connection, {"tenant": tenant_id, "key": user_key})
    return UserRecord(*row) if row else None


def key_exists(connection: Connection, tenant_id: str, user_key: str) -> bool:
    return _KEY_EXISTS.first(connection, {"tenant": tenant_id, "key": user_key}) is not None


def in_tenant(connection: Connection, tenant_id: str, user_id: str) -> UserRecord | None:
    row = connection.execute(
        select(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id)
    ).first()
    return UserRecord(**row._mapping) if row else None


def rename(connection: Connection, user_id: str, user_name: str, user_key: str) -> None:
    """Raises NameTaken when another account holds the key."""
    try:
        with connection.begin_nested():
            connection.execute(
                update(users).where(users.c.id == user_id).values(user_name=user_name, user_key=user_key)
            )
    except IntegrityError as exc:
        raise NameTaken(user_name) from exc


def set_email(connection: Connection, user_id: str, email: str | None) -> None:
    connection.execute(update(users).where(users.c.id == user_id).values(email=email))


def names_and_keys(connection: Connection) -> list[tuple[str, str, str, str]] | None:
    """(id, tenant, user name, key) of every account; None before the schema has keys (doctor)."""
    if "user_key" not in {column["name"] for column in inspect(connection).get_columns("users")}:
        return None
    query = select(users.c.id, users.c.tenant_id, users.c.user_name, users.c.user_key)
    return [
        (row[0], row[1], row[2], row[3]) for row in connection.execute(query.order_by(users.c.created_at))
    ]


def list_all(connection: Connection, tenant_id: str) -> list[UserRecord]:
    rows = connection.execute(select(users).where(users.c.tenant_id == tenant_id).order_by(users.c.user_name))
    return [UserRecord(**row._mapping) for row in rows]


_VISIT = Prepared(
    update(users)
    .where(users.c.id == bindparam("uid"))
    .values(visits=users.c.visits + 1, last_seen_at=bindparam("at"))
)


def record_visit(connection: Connection, user_id: str, at: float) -> None:
    _VISIT.execute(connection, {"uid": user_id, "at": at})


def set_disabled(connection: Connection, user_id: str, disabled: bool) -> bool:
    result = connection.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))
    return result.rowcount > 0


def set_display_name(connection: Connection, user_id: str, display_name: str) -> None:
    connection.execute(update(users).where(users.c.id == user_id).values(display_name=display_name))


def remove(connection: Connection, user_id: str) -> bool:
    return connection.execute(delete(users).where(users.c.id == user_id)).rowcount > 0


# A user joined to another table (a session, a credential): these columns last, in the record's order.
JOINED_COLUMNS = in_order(users, UserRecord.__slots__, prefix="u_")
JOINED_WIDTH = len(JOINED_COLUMNS)


def joined(row: tuple[object, ...]) -> UserRecord:
    """The user part of a row that ends with JOINED_COLUMNS."""
    return UserRecord(*row[-JOINED_WIDTH:])  # type: ignore[arg-type]
