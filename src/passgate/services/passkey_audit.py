"""The passkey API's audit log (Hanko's `audit_logs`): what its ceremonies and credential changes record,
with who called and from where, and a tenant's list of it.

Event types are Hanko's (`webauthn_registration_final_succeeded`, `mfa_authentication_init_failed`, …).
Passgate's own events about the tenant's credentials and keys are listed beside them under their own
names: `credential_added`, `credential_flagged` (a sign-count regression, W3C WebAuthn L3 §6.1.1),
`api_key_added`, `api_key_revoked`, `token_key_rotated`, `tenant_added`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from passgate.services.context import Context
from passgate.services.passkey_tenants import open_tenant
from passgate.store import audit
from passgate.store.audit import AuditFilter, AuditRow
from passgate.store.database import now

# Event ids are UUIDs, as Hanko's: derived from the row, so they are stable and reveal nothing of
# how many events other tenants recorded.
_EVENT_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:passgate:passkey-api:audit-event")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called the API, for the audit log (Hanko's `meta_*`): the address (through trusted
    proxies only), the user agent and the request's id (`X-Request-Id`)."""

    ip: str = ""
    user_agent: str = ""
    request_id: str = ""


NOBODY = Caller()  # a call from within (tests, the command line): no address, agent or request id


@dataclass(frozen=True, slots=True)
class AuditLogPage:
    items: list[dict[str, Any]]
    total: int


def record(
    connection: Connection,
    tenant_id: str,
    caller: Caller,
    kind: str,
    *,
    actor: str | None,
    user_id: str | None = None,
    error: str | None = None,
    **detail: Any,
) -> None:
    """One event of the tenant; `actor` is the backend's user id, `user_id` the user's row when known."""
    if error is not None:
        detail["error"] = error
    audit.record_call(
        connection,
        tenant_id=tenant_id,
        user_id=user_id,
        kind=kind,
        at=now(),
        actor=actor,
        source_ip=caller.ip or None,
        user_agent=caller.user_agent,
        request_id=caller.request_id,
        **detail,
    )


async def list_audit_logs(
    ctx: Context,
    tenant_id: str,
    api_key: str | None,
    *,
    page: int,
    per_page: int,
    since: float | None = None,
    until: float | None = None,
    kinds: tuple[str, ...] = (),
    actor: str | None = None,
    source_ip: str | None = None,
    search: str | None = None,
) -> AuditLogPage:
    """A page of the tenant's events, newest first: strictly the tenant's, whatever the filters say.
    Times are exclusive bounds; the text filters match any part of the actor (the backend's user id),
    the source address, or either (`search`), case-insensitively."""
    where = AuditFilter(
        since=since, until=until, kinds=kinds, actor=actor, source_ip=source_ip, search=search
    )

    def work(connection: Connection) -> AuditLogPage:
        tenant = open_tenant(connection, tenant_id, api_key, key_required=True)
        offset = (page - 1) * per_page
        rows, total = audit.tenant_page(connection, tenant.tenant_id, where, offset=offset, limit=per_page)
        return AuditLogPage([audit_log_json(tenant.tenant_id, row) for row in rows], total)

    return await ctx.db.run(work, write=False)


def audit_log_json(tenant_id: str, row: AuditRow) -> dict[str, Any]:
    """Hanko's audit_log object; what else the event recorded is under `detail` (Passgate's)."""
    detail = dict(row.detail)
    error = detail.pop("error", None)
    created = rfc3339(row.at)
    body: dict[str, Any] = {"id": str(uuid.uuid5(_EVENT_IDS, f"{tenant_id}/{row.id}")), "type": row.kind}
    if error is not None:
        body["error"] = str(error)
    body["meta_http_request_id"] = str(detail.pop("request_id", ""))
    body["meta_source_ip"] = row.source_ip or ""
    body["meta_user_agent"] = str(detail.pop("user_agent", ""))
    if row.actor is not None:
        body["actor_user_id"] = row.actor
    transaction_id = detail.pop("transaction_id", None)
    body |= {"created_at": created, "updated_at": created, "tenant_id": tenant_id}
    body["transaction_id"] = None if transaction_id is None else str(transaction_id)
    if detail:
        body["detail"] = detail
    return body


def rfc3339(timestamp: float) -> str:
    """The passkey API's times: RFC 3339 in UTC, to the microsecond."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
