"""Audit events: security-relevant facts (sign-ins, step-up, sessions ended, passkeys and device links
added, flagged or removed), each with the session that acted when there was one; newest first.
The passkey API's events also name their actor (the backend's user id) and source address."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, insert, or_, select

from passgate.store.models import audit_events, users
from passgate.store.prepared import Prepared

_FIELDS = ("at", "tenant_id", "user_id", "session_id", "kind", "detail", "actor", "source_ip")
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
    _insert(connection, tenant_id, user_id, kind, at, session_id, None, None, detail)


def record_call(
    connection: Connection,
    *,
    tenant_id: str,
    user_id: str | None,
    kind: str,
    at: float,
    actor: str | None,
    source_ip: str | None,
    **detail: Any,
) -> None:
    """An event of the passkey API, with its actor (the backend's user id) and source address."""
    _insert(connection, tenant_id, user_id, kind, at, None, actor, source_ip, detail)


def _insert(
    connection: Connection,
    tenant_id: str,
    user_id: str | None,
    kind: str,
    at: float,
    session_id: str | None,
    actor: str | None,
    source_ip: str | None,
    detail: dict[str, Any],
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
            "actor": actor,
            "source_ip": source_ip,
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


# --------------------------------------------------------------------------- a tenant's events, paged


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """Which of a tenant's events: after `since`, before `until` (epoch seconds, exclusive), of these
    kinds, and whose actor, source address, or either (`search`) contains the text (case-insensitive)."""

    since: float | None = None
    until: float | None = None
    kinds: tuple[str, ...] = ()
    actor: str | None = None
    source_ip: str | None = None
    search: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: float
    kind: str
    actor: str | None  # as recorded, else the name of the user the event is about
    source_ip: str | None
    detail: dict[str, Any]


_ACTOR = func.coalesce(audit_events.c.actor, users.c.user_name)
_WITH_USERS = audit_events.outerjoin(
    users, and_(users.c.id == audit_events.c.user_id, users.c.tenant_id == audit_events.c.tenant_id)
)


def tenant_page(
    connection: Connection, tenant_id: str, where: AuditFilter, *, offset: int, limit: int
) -> tuple[list[AuditRow], int]:
    """One page of a tenant's events, newest first, and how many match in all."""
    conditions = [audit_events.c.tenant_id == tenant_id, *_conditions(where)]
    total = connection.execute(select(func.count()).select_from(_WITH_USERS).where(*conditions)).scalar_one()
    rows = connection.execute(
        select(
            audit_events.c.id,
            audit_events.c.at,
            audit_events.c.kind,
            _ACTOR.label("actor"),
            audit_events.c.source_ip,
            audit_events.c.detail,
        )
        .select_from(_WITH_USERS)
        .where(*conditions)
        .order_by(audit_events.c.at.desc(), audit_events.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    page = [
        AuditRow(row.id, row.at, row.kind, row.actor, row.source_ip, json.loads(row.detail or "{}"))
        for row in rows
    ]
    return page, int(total)


def _conditions(where: AuditFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.since is not None:
        conditions.append(audit_events.c.at > where.since)
    if where.until is not None:
        conditions.append(audit_events.c.at < where.until)
    if where.kinds:
        conditions.append(audit_events.c.kind.in_(where.kinds))
    if where.actor:
        conditions.append(_ACTOR.icontains(where.actor, autoescape=True))
    if where.source_ip:
        conditions.append(audit_events.c.source_ip.icontains(where.source_ip, autoescape=True))
    if where.search:
        conditions.append(
            or_(
                _ACTOR.icontains(where.search, autoescape=True),
                audit_events.c.source_ip.icontains(where.search, autoescape=True),
            )
        )
    return conditions
