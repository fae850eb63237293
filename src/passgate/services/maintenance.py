"""Housekeeping: remove expired challenges, sessions and device links (every worker, every minute)."""

from __future__ import annotations

from sqlalchemy import Connection

from passgate.services import revocation
from passgate.services.context import Context
from passgate.store import challenges, links, sessions
from passgate.store import oidc as oidc_rows
from passgate.store.database import now


async def sweep_expired(ctx: Context) -> int:
    """Delete what has expired; returns how many rows went."""
    at = now()

    def work(connection: Connection) -> int:
        return (
            challenges.sweep(connection, at)
            + sessions.remove_expired(connection, at, at - ctx.settings.session_idle_timeout)
            + links.sweep(connection, at)
            + revocation.sweep(connection, at)
            + oidc_rows.sweep(connection, at)
        )

    return await ctx.db.run(work)
