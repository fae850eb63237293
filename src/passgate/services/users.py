"""Administration (the CLI): add, list, disable, delete users and issue recovery links; rename them,
set their e-mail address, report name clashes."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from passgate.ceremony.encoding import b64url_encode
from passgate.errors import Conflict, NotFound
from passgate.services import device_links, names, revocation
from passgate.services.context import Context
from passgate.services.device_links import NewLink
from passgate.services.emails import valid_email
from passgate.services.registration import USER_HANDLE_BYTES
from passgate.services.sessions import Current
from passgate.store import audit, credentials, users
from passgate.store.database import now
from passgate.store.models import BUILTIN_TENANT
from passgate.store.records import UserRecord


def find(connection: Connection, ctx: Context, name_or_id: str) -> UserRecord:
    """The account with this name (any look-alike spelling: names.user_name) or this id (as `user list`
    shows it: the only handle on an account disabled by a name clash, see `clashes`)."""
    if _is_uuid(name_or_id):
        user = users.in_tenant(connection, ctx.tenant_id, name_or_id)
        if user is not None:
            return user
    user = users.by_key(connection, ctx.tenant_id, names.user_name(name_or_id, new=False).key)
    if user is None:
        raise NotFound(f"No user named {name_or_id!r}.", code="user_not_found")
    return user


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def add(ctx: Context, user_name: str, display_name: str = "") -> UserRecord:
    """An account with no passkey yet; follow with `link` so the person can register one."""
    name = names.user_name(user_name, new=True)
    display_name = names.clean(display_name, field="display_name", required=False) or name.shown

    def work(connection: Connection) -> UserRecord:
        try:
            return users.create(
                connection,
                tenant_id=ctx.tenant_id,
                user_name=name.shown,
                user_key=name.key,
                display_name=display_name,
                user_handle=secrets.token_bytes(USER_HANDLE_BYTES),
                at=now(),
            )
        except users.NameTaken:
            raise _taken(name.shown) from None

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
        user = find(connection, ctx, user_name)
        if not disabled and user.user_key != names.stored_key(user.user_name):
            raise Conflict(
                f"{user.user_name!r} looks like another account's name: rename it first "
                f"(passgate user rename {user.id} NEW_NAME).",
                code="user_name_clash",
            )
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
        user = find(connection, ctx, user_name)
        revocation.end_every_session(connection, ctx, user_id=user.id, reason="user_deleted", acting=None)
        users.remove(connection, user.id)

    ctx.db.transact(work)


def recovery_link(ctx: Context, user_name: str) -> NewLink:
    """A single-use device-addition link, for someone who lost every passkey."""
    return ctx.db.transact(
        lambda connection: device_links.issue(
            connection, ctx, find(connection, ctx, user_name), created_by="admin"
        )
    )


def clear_flag(ctx: Context, credential_id: bytes) -> None:
    """Unblock a passkey flagged after a sign-count regression (an administrator's decision; audited)."""

    def work(connection: Connection) -> None:
        stored = credentials.get(connection, credential_id)
        if stored is None or stored.tenant_id != ctx.tenant_id:
            raise NotFound("No such credential.", code="credential_not_found")
        credentials.clear_flag(connection, credential_id)
        audit.record(
            connection,
            tenant_id=ctx.tenant_id,
            user_id=stored.user_id,
            kind="credential_unblocked",
            at=now(),
            credential_id=b64url_encode(credential_id),
            by="admin",
        )

    ctx.db.transact(work)


async def set_display_name(ctx: Context, current: Current, display_name: str) -> UserRecord:
    """The signed-in user changes the name passkeys show (empty: back to the user name)."""
    cleaned = names.clean(display_name, field="display_name", required=False) or current.user.user_name
    await ctx.db.run(lambda connection: users.set_display_name(connection, current.user.id, cleaned))
    return replace(current.user, display_name=cleaned)


def _taken(user_name: str) -> Conflict:
    return Conflict(f"The name {user_name!r} is taken.", code="user_name_taken")


def rename(ctx: Context, name_or_id: str, new_name: str) -> UserRecord:
    """Give an account another name (checked like a new one); also how a name clash is resolved."""
    name = names.user_name(new_name, new=True)

    def work(connection: Connection) -> UserRecord:
        user = find(connection, ctx, name_or_id)
        try:
            users.rename(connection, user.id, name.shown, name.key)
        except users.NameTaken:
            raise _taken(name.shown) from None
        return replace(user, user_name=name.shown, user_key=name.key)

    return ctx.db.transact(work)


def set_email(ctx: Context, name_or_id: str, address: str | None) -> str | None:
    """Set (validated, normalised) or clear (None) the address sent as `Remote-Email`. The gate sees the
    change within `PASSGATE_REVOCATION_WINDOW` seconds."""
    email = valid_email(address) if address is not None else None

    def work(connection: Connection) -> None:
        users.set_email(connection, find(connection, ctx, name_or_id).id, email)

    ctx.db.transact(work)
    return email


@dataclass(frozen=True, slots=True)
class Clash:
    user_id: str
    user_name: str
    looks_like: str | None  # the name of the account that holds the key, when there is one


def clashes(connection: Connection) -> list[Clash] | None:
    """Accounts whose stored key is not the key of their name: left by the 0004 migration when two
    existing names became one (the later account is disabled until renamed), or by newer Unicode data.
    None when the schema has no keys yet (`passgate doctor` before `migrate`). Only people's names
    are compared: a passkey-API tenant's users are the backends' own ids, matched exactly."""
    rows = users.names_and_keys(connection)
    if rows is None:
        return None
    rows = [row for row in rows if row[1] == BUILTIN_TENANT]
    holders = {(tenant, key): name for _id, tenant, name, key in rows}
    found = []
    for user_id, tenant, name, key in rows:
        expected = names.stored_key(name)
        if key != expected:
            found.append(Clash(user_id, name, holders.get((tenant, expected))))
    return found
