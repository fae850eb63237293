"""The passkey API's credential management for other backends (Hanko's `/credentials` routes): list a
tenant's credentials (of one user or all, paged), read one, rename one, delete one. Each call needs the
tenant's API key; a credential of another tenant, an unknown id and a malformed one answer alike (404),
and every change is audited with Hanko's event types (services/passkey_audit.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from passgate.ceremony.encoding import b64url_decode, b64url_encode
from passgate.errors import BadRequest, CredentialNotFound
from passgate.metadata import describe
from passgate.services import passkey_audit
from passgate.services.context import Context
from passgate.services.passkey_audit import NOBODY, Caller, rfc3339
from passgate.services.passkey_tenants import open_tenant
from passgate.store import tenants as store
from passgate.store.records import CredentialRecord
from passgate.store.tenants import TenantRecord


@dataclass(frozen=True, slots=True)
class CredentialPage:
    items: list[dict[str, Any]]
    total: int


async def list_credentials(
    ctx: Context,
    tenant_id: str,
    api_key: str | None,
    *,
    user_id: str | None,
    page: int,
    per_page: int,
    descending: bool,
) -> CredentialPage:
    """A page of the tenant's credentials, of one user or all (`[]` for an unknown user)."""

    def work(connection: Connection) -> CredentialPage:
        tenant = open_tenant(connection, tenant_id, api_key, key_required=True)
        owner: str | None = None
        if user_id is not None:
            user = store.user_by_external_id(connection, tenant.tenant_id, user_id)
            if user is None:
                return CredentialPage([], 0)
            owner = user.id
        rows, total = store.credentials_page(
            connection,
            tenant.tenant_id,
            user_id=owner,
            descending=descending,
            offset=(page - 1) * per_page,
            limit=per_page,
        )
        return CredentialPage([credential_json(record, external) for record, external in rows], total)

    return await ctx.db.run(work, write=False)


async def get_credential(
    ctx: Context, tenant_id: str, api_key: str | None, credential_id: str
) -> dict[str, Any]:
    def work(connection: Connection) -> dict[str, Any]:
        tenant = open_tenant(connection, tenant_id, api_key, key_required=True)
        record, external = _credential(connection, tenant, credential_id)
        return credential_json(record, external)

    return await ctx.db.run(work, write=False)


async def rename_credential(
    ctx: Context,
    tenant_id: str,
    api_key: str | None,
    credential_id: str,
    name: str,
    caller: Caller = NOBODY,
) -> None:
    def work(connection: Connection) -> None:
        tenant = open_tenant(connection, tenant_id, api_key, key_required=True)
        record, owner = _credential(connection, tenant, credential_id)
        store.rename_credential(connection, tenant.tenant_id, record.credential_id, name)
        _audit_change(connection, tenant, caller, "webauthn_credential_updated", record, owner)

    await ctx.db.run(work)


async def delete_credential(
    ctx: Context, tenant_id: str, api_key: str | None, credential_id: str, caller: Caller = NOBODY
) -> None:
    def work(connection: Connection) -> None:
        tenant = open_tenant(connection, tenant_id, api_key, key_required=True)
        record, owner = _credential(connection, tenant, credential_id)
        store.remove_credential(connection, tenant.tenant_id, record.credential_id)
        _audit_change(connection, tenant, caller, "webauthn_credential_deleted", record, owner)

    await ctx.db.run(work)


def _audit_change(
    connection: Connection,
    tenant: TenantRecord,
    caller: Caller,
    kind: str,
    record: CredentialRecord,
    owner: str,
) -> None:
    credential_id = b64url_encode(record.credential_id)
    passkey_audit.record(
        connection,
        tenant.tenant_id,
        caller,
        kind,
        actor=owner,
        user_id=record.user_id,
        credential_id=credential_id,
    )


def _credential(connection: Connection, tenant: TenantRecord, text: str) -> tuple[CredentialRecord, str]:
    """The tenant's credential; an unknown id, another tenant's and a malformed one answer alike."""
    try:
        found = store.credential_in_tenant(connection, tenant.tenant_id, b64url_decode(text, field="id"))
    except BadRequest:
        found = None
    if found is None:
        raise CredentialNotFound(text)
    return found


def credential_json(record: CredentialRecord, external_id: str) -> dict[str, Any]:
    """Hanko's credential object."""
    cid = b64url_encode(record.credential_id)
    known = describe(record.aaguid)
    body: dict[str, Any] = {
        "id": cid,
        "name": record.name or (known.name if known else f"cred-{cid}"),
        "public_key": b64url_encode(record.public_key),
        "attestation_type": record.attestation_format,
        "aaguid": str(uuid.UUID(record.aaguid)) if record.aaguid else "00000000-0000-0000-0000-000000000000",
        "created_at": rfc3339(record.created_at),
        "transports": [item for item in record.transports.split(",") if item],
        "backup_eligible": record.backup_eligible,
        "backup_state": record.backup_state,
        "is_mfa": record.is_mfa,
        "user_id": external_id,
    }
    if record.last_used_at is not None:
        body["last_used_at"] = rfc3339(record.last_used_at)
    return body
