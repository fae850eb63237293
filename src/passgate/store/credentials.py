"""Credentials: the full WebAuthn credential record, keyed by credential id (unique across tenants)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from passgate.store import users as user_rows
from passgate.store.models import credentials, users
from passgate.store.records import CredentialRecord, UserRecord


class AlreadyRegistered(Exception):
    """A credential with this id exists (for any user)."""


def create(connection: Connection, record: CredentialRecord) -> None:
    try:
        with connection.begin_nested():
            connection.execute(insert(credentials).values(_values(record)))
    except IntegrityError as exc:
        raise AlreadyRegistered from exc


def _values(record: CredentialRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def get(connection: Connection, credential_id: bytes) -> CredentialRecord | None:
    row = connection.execute(select(credentials).where(credentials.c.credential_id == credential_id)).first()
    return CredentialRecord(**row._mapping) if row else None


def for_user(connection: Connection, user_id: str) -> list[CredentialRecord]:
    rows = connection.execute(
        select(credentials).where(credentials.c.user_id == user_id).order_by(credentials.c.created_at)
    )
    return [CredentialRecord(**row._mapping) for row in rows]


def ids_for_user(connection: Connection, user_id: str) -> list[tuple[bytes, str]]:
    """(credential id, transports) pairs, for allowCredentials / excludeCredentials."""
    rows = connection.execute(
        select(credentials.c.credential_id, credentials.c.transports).where(credentials.c.user_id == user_id)
    )
    return [(row[0], row[1]) for row in rows]


def count_for_user(connection: Connection, user_id: str) -> int:
    query = select(func.count()).select_from(credentials).where(credentials.c.user_id == user_id)
    return int(connection.execute(query).scalar_one())


_USED = update(credentials).where(credentials.c.credential_id == bindparam("cid"))
_USE = _USED.values(sign_count=bindparam("sc"), backup_state=bindparam("bs"), last_used_at=bindparam("at"))
_USE_UV = _USED.values(
    sign_count=bindparam("sc"),
    backup_state=bindparam("bs"),
    last_used_at=bindparam("at"),
    uv_initialized=True,
    last_verified_at=bindparam("at"),
)
_WITH_OWNER = (
    select(credentials, *user_rows.JOINED_COLUMNS)
    .join(users, users.c.id == credentials.c.user_id)
    .where(credentials.c.credential_id == bindparam("cid"))
)


def record_use(
    connection: Connection,
    credential_id: bytes,
    *,
    sign_count: int,
    backup_state: bool,
    user_verified: bool,
    at: float,
) -> None:
    """Update the record after a successful assertion (W3C WebAuthn §7.2 step 24)."""
    statement = _USE_UV if user_verified else _USE
    connection.execute(statement, {"cid": credential_id, "sc": sign_count, "bs": backup_state, "at": at})


def flag(connection: Connection, credential_id: bytes, reason: str, at: float) -> None:
    connection.execute(
        update(credentials)
        .where(credentials.c.credential_id == credential_id)
        .values(flagged_at=at, flag_reason=reason)
    )


def clear_flag(connection: Connection, credential_id: bytes) -> bool:
    result = connection.execute(
        update(credentials)
        .where(credentials.c.credential_id == credential_id)
        .values(flagged_at=None, flag_reason=None)
    )
    return result.rowcount > 0


def rename(connection: Connection, credential_id: bytes, user_id: str, name: str) -> bool:
    result = connection.execute(
        update(credentials)
        .where(credentials.c.credential_id == credential_id, credentials.c.user_id == user_id)
        .values(name=name)
    )
    return result.rowcount > 0


def remove(connection: Connection, credential_id: bytes, user_id: str) -> bool:
    result = connection.execute(
        delete(credentials).where(
            credentials.c.credential_id == credential_id, credentials.c.user_id == user_id
        )
    )
    return result.rowcount > 0


def get_with_owner(
    connection: Connection, credential_id: bytes
) -> tuple[CredentialRecord, UserRecord] | None:
    """The credential and its owner in one statement (the sign-in path)."""
    row = connection.execute(_WITH_OWNER, {"cid": credential_id}).first()
    if row is None:
        return None
    mapping = row._mapping
    credential = CredentialRecord(**{name: mapping[name] for name in CredentialRecord.__slots__})
    owner = user_rows.joined(mapping)
    return credential, owner
