"""The audit trail for administrators (`passgate audit`): who did what, from which session, and why."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from passgate.services import users
from passgate.services.context import Context
from passgate.store import audit


def events(ctx: Context, user_name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest events of this tenant, or of one user (NotFound for an unknown name)."""

    def work(connection: Connection) -> list[dict[str, Any]]:
        user_id = users.find(connection, ctx, user_name).id if user_name is not None else None
        return audit.recent(connection, tenant_id=ctx.tenant_id, user_id=user_id, limit=limit)

    return ctx.db.transact(work, write=False)
