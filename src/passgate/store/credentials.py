"""Credentials: the full WebAuthn credential record, keyed by credential id (unique across tenants)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from passgate.store import users as user_rows
from passgate.store.models import credentials, users
from passgate.store.prepared import NewRow, Prepared, in_order
from passgate.store.records import CredentialRecord, UserRecord

_INSERT = NewRow(credentials)
_CREDENTIAL_COLUMNS = in_order(credentials, CredentialRecord.__slots__)
_CREDENTIAL_WIDTH = len(_CREDENTIAL_COLUMNS)
_FOR_USER = Prepared(
    select(*_CREDENTIAL_COLUMNS)
    .where(credentials.c.user_id == bindparam("uid"))
    .order_by(credentials.c.created_at)
)
_IDS_FOR_USER = Prepared(
    select(credentials.c.credential_id, credentials.c.transports).where(
        credentials.c.user_id == bindparam("uid")
    )
)


class AlreadyRegistered(Exception):
    """A credential with this id exists (for any user)."""


def create(connection: Connection, record: CredentialRecord) -> None:
    """Raises AlreadyRegistered when the id exists, after which the transaction goes on as it was
    (`NewRow`)."""
    if not _INSERT.insert(connection, _values(record)):
        raise AlreadyRegistered


def _values(record: CredentialRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def get(connection: Connection, credential_id: bytes) -> CredentialRecord | None:
    row = connection.execute(select(credentials).where(credentials.c.credential_id == credential_id)).first()
    return CredentialRecord(**row._mapping) if row else None


def for_user(connection: Connection, user_id: str) -> list[CredentialRecord]:
    return [CredentialRecord(*row) for row in _FOR_USER.all(connection, {"uid": user_id})]


def ids_for_user(connection: Connection, user_id: str) -> list[tuple[bytes, str]]:
    """(credential id, transports) pairs, for allowCredentials / excludeCredentials."""
    return [(row[0], row[1]) for row in _IDS_FOR_USER.all(connection, {"uid": user_id})]


def count_for_user(connection: Connection, user_id: str) -> int:
    query = select(func.count()).select_from(credentials).where(credentials.c.user_id == user_id)
    return int(connection.execute(query).scalar_one())


_USED = update(credentials).where(credentials.c.credential_id == bindparam("cid"))
_USE = Prepared(
    _USED.values(sign_count=bindparam("sc"), backup_state=bindparam("bs"), last_used_at=bindparam("at"))
)
_USE_UV = Prepared(
    _USED.values(
        sign_count=bindparam("sc"),
        backup_state=bindparam("bs"),
        last_used_at=bindparam("at"),
        uv_initialized=True,
        last_verified_at=bindparam("at"),
    )
)
_WITH_OWNER = Prepared(
    select(*_CREDENTIAL_COLUMNS, *user_rows.JOINED_COLUMNS)
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
    statement.execute(connection, {"cid": credential_id, "sc": sign_count, "bs": backup_state, "at": at})


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
    row = _WITH_OWNER.first(connection, {"cid": credential_id})
    if row is None:
        return None
    return CredentialRecord(*row[:_CREDENTIAL_WIDTH]), user_rows.joined(row)
