"""What every ceremony shares: issuing a challenge bound to its purpose, and finishing exactly once.

A finish consumes its challenge first, whatever happens next (W3C WebAuthn L3 §13.5.3), then runs its
checks and writes inside a savepoint: a failure rolls back every write but keeps the challenge burnt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection

from passgate.ceremony.client_data import ClientData, read_client_data
from passgate.errors import CeremonyFailed, PassgateError
from passgate.services.context import Context
from passgate.store import challenges, prepared
from passgate.store.database import now
from passgate.store.records import ChallengeRecord

T = TypeVar("T")
Purpose = Literal[
    "register",
    "login",
    "add",
    "device",
    "api_register",
    "api_login",
    "api_transaction",
    "api_mfa_register",
    "api_mfa_login",
]


@dataclass(frozen=True, slots=True)
class Client:
    """Who is asking: recorded on sessions, and the origin that began a ceremony binds its finish."""

    user_agent: str = ""
    ip: str = ""
    origin: str | None = None


def issue(
    connection: Connection,
    ctx: Context,
    *,
    challenge: bytes,
    purpose: Purpose,
    state: dict[str, Any],
    user_id: str | None = None,
    session_id: str | None = None,
    ttl: float | None = None,
) -> None:
    """Store a challenge for `purpose`; it expires after `ttl` seconds (default PASSGATE_CHALLENGE_TTL)."""
    challenges.create(
        connection,
        challenge=challenge,
        purpose=purpose,
        tenant_id=ctx.tenant_id,
        user_id=user_id,
        session_id=session_id,
        state=state,
        expires_at=now() + (ttl if ttl is not None else ctx.settings.challenge_ttl),
    )


def finish(
    connection: Connection,
    ctx: Context,
    credential: dict[str, Any],
    purpose: Purpose,
    steps: Callable[[Connection, ChallengeRecord, ClientData], T],
    failure: type[CeremonyFailed] = CeremonyFailed,
    savepoint: bool = True,
) -> T | PassgateError:
    """Consume the challenge named in clientDataJSON, then run `steps` in a savepoint.

    Returns the error instead of raising so that the caller's transaction commits the burnt challenge.
    """
    client_data = read_client_data(credential)
    record = challenges.consume(connection, client_data.challenge, now())
    if record is None or record.purpose != purpose or record.tenant_id != ctx.tenant_id:
        return failure(detail="challenge unknown, expired, used or issued for another purpose")
    try:
        if not savepoint:  # the steps write nothing before their last check can fail
            return steps(connection, record, client_data)
        with prepared.savepoint(connection):
            return steps(connection, record, client_data)
    except PassgateError as exc:
        return exc


async def run_finish(ctx: Context, work: Callable[[Connection], T | PassgateError]) -> T:
    """Run a unit of work that returns its refusal instead of raising it (a finish, whose burnt challenge
    must stay burnt; an audited refusal): raise that error after the transaction committed."""
    result = await ctx.db.run(work)
    if isinstance(result, PassgateError):
        raise result
    return result
