"""Audit events: security-relevant facts (sign-ins, step-up, sessions ended, passkeys and device links
added, flagged or removed), each with the session that acted when there was one; newest first."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select

from passgate.store.models import audit_events, users
from passgate.store.prepared import Prepared

_FIELDS = ("at", "tenant_id", "user_id", "session_id", "kind", "detail")
_INSERT = Prepared(insert(audit_events).values({name: bindparam(name) for name in _FIELDS}))


def record(
    connection: Connection,
    *,
    tenant_id: str,
    user_id: str | None,
    kind: str,
    at: float,
    session_id: str | None = None,
    **detail: Any,
) -> None:
    _INSERT.execute(
        connection,
        {
            "at": at,
            "tenant_id": tenant_id,
            "user_id": user_id,
            "session_id": session_id,
            "kind": kind,
            "detail": json.dumps(detail, default=str),
        },
    )


def for_user(connection: Connection, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(audit_events.c.at, audit_events.c.kind, audit_events.c.detail)
        .where(audit_events.c.user_id == user_id)
        .order_by(audit_events.c.at.desc())
        .limit(limit)
    )
    return [{"at": row.at, "kind": row.kind, **json.loads(row.detail)} for row in rows]


def recent(
    connection: Connection, *, tenant_id: str | None, user_id: str | None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest events (of one user, or of a tenant), with the user's name when the user still exists."""
    query = (
        select(
            audit_events.c.at,
            audit_events.c.kind,
            audit_events.c.detail,
            audit_events.c.user_id,
            audit_events.c.session_id,
            users.c.user_name,
        )
        .outerjoin(users, users.c.id == audit_events.c.user_id)
        .order_by(audit_events.c.at.desc(), audit_events.c.id.desc())
        .limit(limit)
    )
    if user_id is not None:
        query = query.where(audit_events.c.user_id == user_id)
    if tenant_id is not None:
        query = query.where(audit_events.c.tenant_id == tenant_id)
    return [
        {
            "at": row.at,
            "kind": row.kind,
            "user_id": row.user_id,
            "user_name": row.user_name,
            "session_id": row.session_id,
            **json.loads(row.detail),
        }
        for row in connection.execute(query)
    ]
