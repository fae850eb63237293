"""Passkey-API tenants: their relying party, API keys (hashes only), token-signing keys, transactions,
and the users a backend names by its own id (stored as the user's name and key in that tenant)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, insert, select, update

from passgate.store.models import (
    api_keys,
    credentials,
    passkey_tenants,
    passkey_transactions,
    tenants,
    token_keys,
    users,
)
from passgate.store.prepared import NewRow, Prepared, in_order
from passgate.store.records import CredentialRecord, UserRecord


@dataclass(frozen=True, slots=True)
class TenantRecord:
    tenant_id: str
    name: str
    created_at: float
    rp_id: str
    rp_name: str
    origins: list[str]
    user_verification: str
    timeout_ms: int
    resident_key: str
    attestation: str


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    tenant_id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class TokenKeyRecord:
    kid: str
    tenant_id: str
    sealed_private_key: bytes
    public_jwk: dict[str, Any]
    created_at: float


class TransactionExists(Exception):
    """The transaction id was used before in this tenant."""


_TENANT = (
    select(
        passkey_tenants.c.tenant_id,
        tenants.c.name,
        tenants.c.created_at,
        passkey_tenants.c.rp_id,
        passkey_tenants.c.rp_name,
        passkey_tenants.c.origins,
        passkey_tenants.c.user_verification,
        passkey_tenants.c.timeout_ms,
        passkey_tenants.c.resident_key,
        passkey_tenants.c.attestation,
    )
    .join(tenants, tenants.c.id == passkey_tenants.c.tenant_id)
    .order_by(tenants.c.created_at)
)
_ONE_TENANT = Prepared(_TENANT.where(passkey_tenants.c.tenant_id == bindparam("tid")))


def create(connection: Connection, record: TenantRecord) -> None:
    connection.execute(
        insert(tenants).values(id=record.tenant_id, name=record.name, created_at=record.created_at)
    )
    connection.execute(insert(passkey_tenants).values(tenant_id=record.tenant_id, **_settings(record)))


def update_settings(connection: Connection, record: TenantRecord) -> None:
    """Write a tenant's name, relying party and policy (its id and creation time never change)."""
    connection.execute(update(tenants).where(tenants.c.id == record.tenant_id).values(name=record.name))
    connection.execute(
        update(passkey_tenants)
        .where(passkey_tenants.c.tenant_id == record.tenant_id)
        .values(**_settings(record))
    )


def _settings(record: TenantRecord) -> dict[str, Any]:
    """A tenant's relying party and policy, as `passkey_tenants` stores them."""
    return {
        "rp_id": record.rp_id,
        "rp_name": record.rp_name,
        "origins": record.origins,
        "user_verification": record.user_verification,
        "timeout_ms": record.timeout_ms,
        "resident_key": record.resident_key,
        "attestation": record.attestation,
    }


def credential_count(connection: Connection, tenant_id: str) -> int:
    statement = select(func.count()).select_from(credentials).where(credentials.c.tenant_id == tenant_id)
    return int(connection.execute(statement).scalar_one())


def get(connection: Connection, tenant_id: str) -> TenantRecord | None:
    row = _ONE_TENANT.first(connection, {"tid": tenant_id})
    return TenantRecord(**dict(zip(_ONE_TENANT.columns, row, strict=True))) if row else None


def list_all(connection: Connection) -> list[TenantRecord]:
    return [TenantRecord(**row._mapping) for row in connection.execute(_TENANT)]


def remove(connection: Connection, tenant_id: str) -> bool:
    """Delete a passkey-API tenant with everything it holds (users, credentials, keys, transactions)."""
    if get(connection, tenant_id) is None:
        return False
    # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys on (they are, but a
    # tenant's removal must not depend on a connection setting).
    for table in (passkey_transactions, api_keys, token_keys, passkey_tenants, credentials):
        connection.execute(delete(table).where(table.c.tenant_id == tenant_id))
    connection.execute(delete(users).where(users.c.tenant_id == tenant_id))
    connection.execute(delete(tenants).where(tenants.c.id == tenant_id))
    return True


# --------------------------------------------------------------------------- API keys


def add_api_key(connection: Connection, *, tenant_id: str, name: str, secret_hash: bytes, at: float) -> str:
    key_id = str(uuid.uuid4())
    connection.execute(
        insert(api_keys).values(
            id=key_id, tenant_id=tenant_id, name=name, secret_hash=secret_hash, created_at=at
        )
    )
    return key_id


_KEY_MATCHES = Prepared(
    select(api_keys.c.id).where(
        api_keys.c.tenant_id == bindparam("tid"), api_keys.c.secret_hash == bindparam("h")
    )
)


def api_key_matches(connection: Connection, tenant_id: str, secret_hash: bytes) -> bool:
    return _KEY_MATCHES.first(connection, {"tid": tenant_id, "h": secret_hash}) is not None


def api_keys_of(connection: Connection, tenant_id: str) -> list[ApiKeyRecord]:
    rows = connection.execute(
        select(api_keys.c.id, api_keys.c.tenant_id, api_keys.c.name, api_keys.c.created_at)
        .where(api_keys.c.tenant_id == tenant_id)
        .order_by(api_keys.c.created_at)
    )
    return [ApiKeyRecord(**row._mapping) for row in rows]


def revoke_api_key(connection: Connection, tenant_id: str, key_id: str) -> bool:
    statement = delete(api_keys).where(api_keys.c.tenant_id == tenant_id, api_keys.c.id == key_id)
    return connection.execute(statement).rowcount > 0


# --------------------------------------------------------------------------- token-signing keys


def add_token_key(connection: Connection, record: TokenKeyRecord) -> None:
    connection.execute(insert(token_keys).values({name: getattr(record, name) for name in record.__slots__}))


_NEWEST_KEY = Prepared(
    select(token_keys)
    .where(token_keys.c.tenant_id == bindparam("tid"))
    .order_by(token_keys.c.created_at.desc(), token_keys.c.kid)
    .limit(1)
)


def signing_key(connection: Connection, tenant_id: str) -> TokenKeyRecord | None:
    """The newest key: the one that signs."""
    row = _NEWEST_KEY.first(connection, {"tid": tenant_id})
    return TokenKeyRecord(**dict(zip(_NEWEST_KEY.columns, row, strict=True))) if row else None


_NEWEST = token_keys.alias("newest")
_SIGNS = (  # the tenant's newest key, the one that signs
    select(_NEWEST.c.kid)
    .where(_NEWEST.c.tenant_id == passkey_tenants.c.tenant_id)
    .order_by(_NEWEST.c.created_at.desc(), _NEWEST.c.kid)
    .limit(1)
    .correlate(passkey_tenants)
    .scalar_subquery()
)
_TENANT_TO_SIGN = Prepared(
    select(
        *_TENANT.selected_columns,
        exists()
        .where(api_keys.c.tenant_id == passkey_tenants.c.tenant_id, api_keys.c.secret_hash == bindparam("h"))
        .label("api_key_matches"),
        *in_order(token_keys, TokenKeyRecord.__slots__, "signing_"),
    )
    .select_from(
        passkey_tenants.join(tenants, tenants.c.id == passkey_tenants.c.tenant_id).outerjoin(
            token_keys, token_keys.c.kid == _SIGNS
        )
    )
    .where(passkey_tenants.c.tenant_id == bindparam("tid"))
)


def tenant_to_sign(
    connection: Connection, tenant_id: str, secret_hash: bytes
) -> tuple[TenantRecord, bool, TokenKeyRecord | None] | None:
    """The tenant, whether `secret_hash` is one of its API keys', and its signing key, in one statement
    (what a finish reads before its ceremony); None for an unknown tenant."""
    row = _TENANT_TO_SIGN.first(connection, {"tid": tenant_id, "h": secret_hash})
    if row is None:
        return None
    values = dict(zip(_TENANT_TO_SIGN.columns, row, strict=True))
    matches = bool(values.pop("api_key_matches"))
    key = {name: values.pop("signing_" + name) for name in TokenKeyRecord.__slots__}
    return TenantRecord(**values), matches, TokenKeyRecord(**key) if key["kid"] is not None else None


def token_keys_of(connection: Connection, tenant_id: str) -> list[TokenKeyRecord]:
    """Every key, newest first."""
    rows = connection.execute(
        select(token_keys)
        .where(token_keys.c.tenant_id == tenant_id)
        .order_by(token_keys.c.created_at.desc(), token_keys.c.kid)
    )
    return [TokenKeyRecord(**row._mapping) for row in rows]


def remove_token_keys(connection: Connection, kids: list[str]) -> None:
    if kids:
        connection.execute(delete(token_keys).where(token_keys.c.kid.in_(kids)))


# --------------------------------------------------------------------------- users by the backend's id

_BY_EXTERNAL_ID = Prepared(
    select(*in_order(users, UserRecord.__slots__)).where(
        users.c.tenant_id == bindparam("tid"), users.c.user_name == bindparam("uid")
    )
)


def user_by_external_id(connection: Connection, tenant_id: str, external_id: str) -> UserRecord | None:
    row = _BY_EXTERNAL_ID.first(connection, {"tid": tenant_id, "uid": external_id})
    return UserRecord(*row) if row else None


def set_display_name(connection: Connection, user_id: str, display_name: str) -> None:
    connection.execute(update(users).where(users.c.id == user_id).values(display_name=display_name))


# --------------------------------------------------------------------------- credentials of a tenant


def credentials_page(
    connection: Connection,
    tenant_id: str,
    *,
    user_id: str | None,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[list[tuple[CredentialRecord, str]], int]:
    """One page of a tenant's credentials (of one user, or all) with their owner's external id, and the
    total count."""
    where = [credentials.c.tenant_id == tenant_id]
    if user_id is not None:
        where.append(credentials.c.user_id == user_id)
    total = connection.execute(select(func.count()).select_from(credentials).where(*where)).scalar_one()
    order = credentials.c.created_at.desc() if descending else credentials.c.created_at.asc()
    rows = connection.execute(
        select(credentials, users.c.user_name.label("owner_external_id"))
        .join(users, users.c.id == credentials.c.user_id)
        .where(*where)
        .order_by(order, credentials.c.credential_id)
        .offset(offset)
        .limit(limit)
    )
    page = [
        (
            CredentialRecord(**{name: row._mapping[name] for name in CredentialRecord.__slots__}),
            str(row.owner_external_id),
        )
        for row in rows
    ]
    return page, int(total)


_IN_TENANT = Prepared(
    select(*in_order(credentials, CredentialRecord.__slots__), users.c.user_name.label("owner_external_id"))
    .join(users, users.c.id == credentials.c.user_id)
    .where(credentials.c.credential_id == bindparam("cid"), credentials.c.tenant_id == bindparam("tid"))
)


def credential_in_tenant(
    connection: Connection, tenant_id: str, credential_id: bytes
) -> tuple[CredentialRecord, str] | None:
    """A credential of this tenant and its owner's external id; None for unknown and foreign ones alike."""
    row = _IN_TENANT.first(connection, {"cid": credential_id, "tid": tenant_id})
    if row is None:
        return None
    return CredentialRecord(*row[:-1]), str(row[-1])


def rename_credential(connection: Connection, tenant_id: str, credential_id: bytes, name: str) -> bool:
    statement = (
        update(credentials)
        .where(credentials.c.credential_id == credential_id, credentials.c.tenant_id == tenant_id)
        .values(name=name)
    )
    return connection.execute(statement).rowcount > 0


def remove_credential(connection: Connection, tenant_id: str, credential_id: bytes) -> bool:
    statement = delete(credentials).where(
        credentials.c.credential_id == credential_id, credentials.c.tenant_id == tenant_id
    )
    return connection.execute(statement).rowcount > 0


# --------------------------------------------------------------------------- transactions


def add_transaction(
    connection: Connection, *, tenant_id: str, transaction_id: str, user_id: str, data: str, at: float
) -> None:
    """Raises TransactionExists when the id was used before in this tenant (the primary key says so),
    after which the transaction goes on as it was (`NewRow`)."""
    values = {"tenant_id": tenant_id, "transaction_id": transaction_id, "user_id": user_id, "data": data}
    if not _NEW_TRANSACTION.insert(connection, {**values, "created_at": at, "finished_at": None}):
        raise TransactionExists(transaction_id)


_NEW_TRANSACTION = NewRow(passkey_transactions)
_FINISH_TRANSACTION = Prepared(
    update(passkey_transactions)
    .where(
        passkey_transactions.c.tenant_id == bindparam("tid"),
        passkey_transactions.c.transaction_id == bindparam("xid"),
        passkey_transactions.c.finished_at.is_(None),
    )
    .values(finished_at=bindparam("at"))
)


def finish_transaction(connection: Connection, tenant_id: str, transaction_id: str, at: float) -> bool:
    """Mark the transaction finished; False when it was finished before (or is gone)."""
    return _FINISH_TRANSACTION.rowcount(connection, {"tid": tenant_id, "xid": transaction_id, "at": at}) > 0
