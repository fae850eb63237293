"""Group memberships (administration): forward-auth rules allow groups, `Remote-Groups` lists them."""

from __future__ import annotations

from collections.abc import Callable

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
    return _change(ctx, user_name, group, groups.add)


def remove(ctx: Context, user_name: str, group: str) -> bool:
    """Take a user out of a group; False when they were not in it."""
    return _change(ctx, user_name, group, groups.remove)


def _change(ctx: Context, user_name: str, group: str, change: Callable[[Connection, str, str], bool]) -> bool:
    """Apply a membership change; every process reads the user's groups afresh (the revocation log)."""
    group = clean_group(group)

    def work(connection: Connection) -> bool:
        user = _user(connection, ctx, user_name)
        changed = change(connection, user.id, group)
        revocation.end_sessions(connection, ctx, user_id=user.id, reason="groups_changed", acting=None)
        return changed

    return ctx.db.transact(work)


def of_user(ctx: Context, user_name: str) -> list[str]:
    return ctx.db.transact(
        lambda connection: groups.for_user(connection, _user(connection, ctx, user_name).id)
    )
