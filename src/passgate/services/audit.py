"""The audit trail for administrators (`passgate audit`): who did what, from which session, and why."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from passgate.errors import NotFound
from passgate.services.context import Context
from passgate.store import audit, users


def events(ctx: Context, user_name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest events of this tenant, or of one user (NotFound for an unknown name)."""

    def work(connection: Connection) -> list[dict[str, Any]]:
        user_id = None
        if user_name is not None:
            user = users.by_name(connection, ctx.tenant_id, user_name)
            if user is None:
                raise NotFound(f"No user named {user_name!r}.", code="user_not_found")
            user_id = user.id
        return audit.recent(connection, tenant_id=ctx.tenant_id, user_id=user_id, limit=limit)

    return ctx.db.transact(work, write=False)
