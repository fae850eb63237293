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


def sweep(connection: Connection, now: float) -> int:
    return connection.execute(delete(device_links).where(device_links.c.expires_at <= now)).rowcount
