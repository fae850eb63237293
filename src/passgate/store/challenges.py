"""Challenges: stored server-side, bound to purpose/tenant/user, consumed exactly once.

`consume` is `DELETE … RETURNING` inside the caller's transaction: of two finishes racing for the same
challenge, one gets the row and the other gets nothing. `peek` reads one without using it up, for a
finish that verifies before it writes (services/ceremonies.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select

from passgate.store.models import challenges
from passgate.store.prepared import Prepared, in_order
from passgate.store.records import ChallengeRecord

_INSERT = Prepared(insert(challenges))
_CONSUME = Prepared(
    delete(challenges)
    .where(challenges.c.challenge == bindparam("c"))
    .returning(*in_order(challenges, ChallengeRecord.__slots__))
)
_USE = Prepared(
    delete(challenges).where(challenges.c.challenge == bindparam("c")).returning(challenges.c.expires_at)
)
_PEEK = Prepared(
    select(*in_order(challenges, ChallengeRecord.__slots__)).where(challenges.c.challenge == bindparam("c"))
)


def create(
    connection: Connection,
    *,
    challenge: bytes,
    purpose: str,
    tenant_id: str,
    expires_at: float,
    state: dict[str, Any],
    user_id: str | None = None,
    session_id: str | None = None,
) -> None:
    _INSERT.execute(
        connection,
        dict(
            challenge=challenge,
            purpose=purpose,
            tenant_id=tenant_id,
            user_id=user_id,
            session_id=session_id,
            state=state,
            expires_at=expires_at,
        ),
    )


def consume(connection: Connection, challenge: bytes, now: float) -> ChallengeRecord | None:
    """Delete the challenge and return it if it existed and had not expired."""
    row = _CONSUME.first(connection, {"c": challenge})
    if row is None:
        return None
    record = ChallengeRecord(*row)
    return record if record.expires_at > now else None


def use(connection: Connection, challenge: bytes, now: float) -> bool:
    """`consume` for a finish that has read the challenge already (`peek`): whether it was still there
    and had not expired, deleting it either way."""
    row = _USE.first(connection, {"c": challenge})
    return row is not None and row[0] > now


def peek(connection: Connection, challenge: bytes) -> ChallengeRecord | None:
    """The challenge, expired or not, left in place (`consume` decides its one use)."""
    row = _PEEK.first(connection, {"c": challenge})
    return None if row is None else ChallengeRecord(*row)


def sweep(connection: Connection, now: float) -> int:
    return connection.execute(delete(challenges).where(challenges.c.expires_at <= now)).rowcount
