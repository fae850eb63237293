"""What the allow lists of real accounts look like (for decoys): per account, the length and transports
of each passkey, in the order a named sign-in lists them. Never ids, keys or names."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from passgate.store.models import credentials, users

Shape = tuple[tuple[int, str], ...]  # one (credential id length, comma-separated transports) per passkey


def recent(connection: Connection, tenant_id: str, *, max_rows: int) -> list[Shape]:
    """The shapes of the most recently created enabled accounts that have a passkey, from at most
    `max_rows` passkeys (an account cut short by the bound is left out)."""
    query = (
        select(credentials.c.user_id, func.length(credentials.c.credential_id), credentials.c.transports)
        .join(users, users.c.id == credentials.c.user_id)
        .where(users.c.tenant_id == tenant_id, users.c.disabled.is_(False))
        .order_by(users.c.created_at.desc(), users.c.id, credentials.c.created_at)
        .limit(max_rows + 1)
    )
    rows = connection.execute(query).all()
    shapes: dict[str, list[tuple[int, str]]] = {}
    for user_id, length, transports in rows[:max_rows]:
        shapes.setdefault(user_id, []).append((int(length), transports or ""))
    if len(rows) > max_rows:
        shapes.pop(rows[max_rows][0], None)  # the account the bound cut short
    return [tuple(shape) for shape in shapes.values()]
