"""Device links: single-use, expiring secrets (stored as SHA-256) that let a user add a passkey."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from passgate.store.models import device_links
from passgate.store.records import LinkRecord


def create(connection: Connection, record: LinkRecord) -> None:
    connection.execute(
        insert(device_links).values({name: getattr(record, name) for name in record.__slots__})
    )


def find(connection: Connection, secret_hash: bytes, now: float) -> LinkRecord | None:
    row = connection.execute(
        select(device_links).where(device_links.c.secret_hash == secret_hash, device_links.c.expires_at > now)
    ).first()
    return LinkRecord(**row._mapping) if row else None


def consume(connection: Connection, link_id: str, now: float) -> LinkRecord | None:
    """Delete the link and return it if it was still valid (single use, even under races)."""
    row = connection.execute(
        delete(device_links).where(device_links.c.id == link_id).returning(*device_links.c)
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return LinkRecord(**row._mapping)


def for_user(connection: Connection, user_id: str, now: float) -> list[LinkRecord]:
    """The user's outstanding links, newest first."""
    rows = connection.execute(
        select(device_links)
        .where(device_links.c.user_id == user_id, device_links.c.expires_at > now)
        .order_by(device_links.c.created_at.desc())
    )
    return [LinkRecord(**row._mapping) for row in rows]


def remove(connection: Connection, link_id: str, user_id: str) -> bool:
    query = delete(device_links).where(device_links.c.id == link_id, device_links.c.user_id == user_id)
    return connection.execute(query).rowcount > 0


def remove_all(connection: Connection, user_id: str) -> int:
    return connection.execute(delete(device_links).where(device_links.c.user_id == user_id)).rowcount


def sweep(connection: Connection, now: float) -> int:
    return connection.execute(delete(device_links).where(device_links.c.expires_at <= now)).rowcount
