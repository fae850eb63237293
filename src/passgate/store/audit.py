"""Audit events: security-relevant facts (sign-ins, flagged credentials, removals), newest first."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select

from passgate.store.models import audit_events


def record(
    connection: Connection, *, tenant_id: str, user_id: str | None, kind: str, at: float, **detail: Any
) -> None:
    connection.execute(
        insert(audit_events).values(
            at=at, tenant_id=tenant_id, user_id=user_id, kind=kind, detail=json.dumps(detail, default=str)
        )
    )


def for_user(connection: Connection, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(audit_events.c.at, audit_events.c.kind, audit_events.c.detail)
        .where(audit_events.c.user_id == user_id)
        .order_by(audit_events.c.at.desc())
        .limit(limit)
    )
    return [{"at": row.at, "kind": row.kind, **json.loads(row.detail)} for row in rows]
