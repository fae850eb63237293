"""Group memberships (administration): forward-auth rules allow groups, `Remote-Groups` lists them."""

from __future__ import annotations

from sqlalchemy import Connection

from passgate.errors import BadRequest
from passgate.gate_config import GROUP_HELP, GROUP_NAME
from passgate.services import revocation
from passgate.services.context import Context
from passgate.services.users import find
from passgate.store import groups
from passgate.store.records import UserRecord


def clean_group(name: str) -> str:
    """A group name as stored (lowercase); BadRequest naming the allowed form otherwise."""
    value = name.strip().lower()
    if not GROUP_NAME.match(value):
        raise BadRequest(f"{name!r} is not a group name: use {GROUP_HELP}.", code="invalid_group")
    return value


def _user(connection: Connection, ctx: Context, user_name: str) -> UserRecord:
    return find(connection, ctx, user_name)  # any spelling of the name (its canonical key), or the id


def add(ctx: Context, user_name: str, group: str) -> bool:
    """Put a user in a group; False when they already were in it."""
    group = clean_group(group)

    def work(connection: Connection) -> bool:
        user = _user(connection, ctx, user_name)
        added = groups.add(connection, user.id, group)
        revocation.end_sessions(connection, ctx, user_id=user.id, reason="groups_changed", acting=None)
        return added

    return ctx.db.transact(work)


def remove(ctx: Context, user_name: str, group: str) -> bool:
    """Take a user out of a group; False when they were not in it."""
    group = clean_group(group)

    def work(connection: Connection) -> bool:
        user = _user(connection, ctx, user_name)
        removed = groups.remove(connection, user.id, group)
        revocation.end_sessions(connection, ctx, user_id=user.id, reason="groups_changed", acting=None)
        return removed

    return ctx.db.transact(work)


def of_user(ctx: Context, user_name: str) -> list[str]:
    return ctx.db.transact(
        lambda connection: groups.for_user(connection, _user(connection, ctx, user_name).id)
    )
