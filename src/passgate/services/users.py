"""Administration (the CLI): add, list, disable, delete users and issue recovery links."""

from __future__ import annotations

import secrets
from dataclasses import replace

from sqlalchemy import Connection

from passgate.errors import Conflict, NotFound
from passgate.services import device_links, names, revocation
from passgate.services.context import Context
from passgate.services.device_links import NewLink
from passgate.services.registration import USER_HANDLE_BYTES
from passgate.services.sessions import Current
from passgate.store import credentials, users
from passgate.store.database import now
from passgate.store.records import UserRecord


def _require(connection: Connection, ctx: Context, user_name: str) -> UserRecord:
    user = users.by_name(connection, ctx.tenant_id, user_name)
    if user is None:
        raise NotFound(f"No user named {user_name!r}.", code="user_not_found")
    return user


def add(ctx: Context, user_name: str, display_name: str = "") -> UserRecord:
    """An account with no passkey yet; follow with `link` so the person can register one."""
    user_name = names.clean(user_name, field="user_name")
    display_name = names.clean(display_name, field="display_name", required=False) or user_name

    def work(connection: Connection) -> UserRecord:
        try:
            return users.create(
                connection,
                tenant_id=ctx.tenant_id,
                user_name=user_name,
                display_name=display_name,
                user_handle=secrets.token_bytes(USER_HANDLE_BYTES),
                at=now(),
            )
        except users.NameTaken:
            raise Conflict(f"The name {user_name!r} is taken.", code="user_name_taken") from None

    return ctx.db.transact(work)


def listing(ctx: Context) -> list[tuple[UserRecord, int]]:
    def work(connection: Connection) -> list[tuple[UserRecord, int]]:
        return [
            (u, credentials.count_for_user(connection, u.id))
            for u in users.list_all(connection, ctx.tenant_id)
        ]

    return ctx.db.transact(work, write=False)


def set_disabled(ctx: Context, user_name: str, disabled: bool) -> None:
    """Disable (ending every session and revoking every device link at once) or enable an account."""

    def work(connection: Connection) -> None:
        user = _require(connection, ctx, user_name)
        users.set_disabled(connection, user.id, disabled)
        if disabled:
            revocation.end_every_session(
                connection, ctx, user_id=user.id, reason="user_disabled", acting=None
            )
        else:
            revocation.end_sessions(connection, ctx, user_id=user.id, reason="user_enabled", acting=None)

    ctx.db.transact(work)


def delete(ctx: Context, user_name: str) -> None:
    """Delete an account with its passkeys, sessions and links (every process forgets its sessions)."""

    def work(connection: Connection) -> None:
        user = _require(connection, ctx, user_name)
        revocation.end_every_session(connection, ctx, user_id=user.id, reason="user_deleted", acting=None)
        users.remove(connection, user.id)

    ctx.db.transact(work)


def recovery_link(ctx: Context, user_name: str) -> NewLink:
    """A single-use device-addition link, for someone who lost every passkey."""
    return ctx.db.transact(
        lambda connection: device_links.issue(
            connection, ctx, _require(connection, ctx, user_name), created_by="admin"
        )
    )


def clear_flag(ctx: Context, credential_id: bytes) -> None:
    if not ctx.db.transact(lambda connection: credentials.clear_flag(connection, credential_id)):
        raise NotFound("No such credential.", code="credential_not_found")


async def set_display_name(ctx: Context, current: Current, display_name: str) -> UserRecord:
    """The signed-in user changes the name passkeys show (empty: back to the user name)."""
    cleaned = names.clean(display_name, field="display_name", required=False) or current.user.user_name
    await ctx.db.run(lambda connection: users.set_display_name(connection, current.user.id, cleaned))
    return replace(current.user, display_name=cleaned)
