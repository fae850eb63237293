"""What every ceremony shares: issuing a challenge bound to its purpose, and finishing exactly once.

Every finish (sign-in, sign-up, adding a passkey, a device link, the passkey API's) goes through
`finish_verified`: it reads what the check needs, checks with no transaction open, then consumes the
challenge, whatever happens next (W3C WebAuthn L3 §13.5.3), and writes in one short write transaction
that re-reads whatever the check relied on and could have changed, inside a savepoint: a failure rolls
back every write but keeps the challenge burnt. On SQLite the database-wide write lock is thus held
for the writes alone, so workers are not serialised on each other's verifies. PostgreSQL locks rows,
not the database: there the three steps run in one unit of work, with the same
re-read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Connection

from passgate.ceremony.client_data import ClientData, read_client_data
from passgate.errors import CeremonyFailed, PassgateError
from passgate.services.context import Context
from passgate.store import challenges, prepared
from passgate.store.database import now
from passgate.store.records import ChallengeRecord

T = TypeVar("T")
R = TypeVar("R")
V = TypeVar("V")
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


async def run_finish(ctx: Context, work: Callable[[Connection], T | PassgateError]) -> T:
    """Run a unit of work that returns its refusal instead of raising it (an audited refusal, kept with
    its audit record): raise that error after the transaction committed."""
    return raised(await ctx.db.run(work))


def raised(outcome: T | PassgateError) -> T:
    """A unit of work's or a finish's outcome, its refusal raised (once what it burnt is committed)."""
    if isinstance(outcome, PassgateError):
        raise outcome
    return outcome


@dataclass(frozen=True, slots=True)
class Begun(Generic[R]):
    """A finish's challenge, read before its check, and what `read` returned."""

    record: ChallengeRecord
    client_data: ClientData
    found: R


async def finish_verified(
    ctx: Context,
    credential: dict[str, Any],
    purpose: Purpose,
    *,
    read: Callable[[Connection, ChallengeRecord], R],
    check: Callable[[Begun[R]], V],
    write: Callable[[Connection, Begun[R], V], T | PassgateError],
    failure: type[CeremonyFailed] = CeremonyFailed,
    savepoint: bool = True,
    opening: Callable[[Connection], Context] | None = None,
    consumed: Callable[[Connection, ChallengeRecord, T | PassgateError], T | PassgateError] | None = None,
) -> T | PassgateError:
    """Finish a ceremony: `read` what its check needs, `check` it (a signature verify; raises
    PassgateError), then consume the challenge (burnt whatever the outcome, W3C WebAuthn L3 §13.5.3) and
    `write`.

    On SQLite, whose one write lock serves the whole database, `read` runs in a read-only unit of work,
    `check` with no transaction open, and the consume and `write` in one short write unit. On PostgreSQL,
    which locks rows, all three run in one unit of work, the challenge consumed first.
    Either way `write` must re-read what the check relied on and another request could change meanwhile
    (a sign count, a flag). It runs in a savepoint: a refusal it raises rolls back its writes, one it
    returns is committed with the burnt challenge (`savepoint=False` when it raises only before its
    first write).

    `opening`, when given, runs first in the first unit of work and gives the context the ceremony
    belongs to (a passkey-API tenant's): what it raises is raised before anything is read or consumed.
    `consumed`, when given, runs in the write unit once a challenge of this ceremony was consumed, with
    the outcome, and returns the outcome to keep (an audit record of it, committed with it).

    Returns the refusal instead of raising it; a clientDataJSON that cannot be read raises BadRequest
    before anything is consumed or written. A challenge that does not exist is refused without a write
    transaction: there is nothing to burn."""
    opened = ctx
    client_data: ClientData | None = None

    def looked_up(connection: Connection, *, consume: bool) -> Begun[R] | ChallengeRecord | None:
        """The ceremony's challenge (consumed, or left in place) and what `read` found for it."""
        nonlocal opened, client_data
        if opening is not None:
            opened = opening(connection)
        client_data = read_client_data(credential)
        if consume:
            record = challenges.consume(connection, client_data.challenge, now())  # burnt, even expired
        else:
            record = challenges.peek(connection, client_data.challenge)
        if record is None or record.expires_at <= now() or not _belongs(record, opened, purpose):
            return record  # nothing to check: refused (and burnt, when it exists)
        return Begun(record, client_data, read(connection, record))

    def verdict(begun: Begun[R] | ChallengeRecord) -> V | PassgateError:
        if not isinstance(begun, Begun):
            return _refused(failure)
        try:
            return check(begun)
        except PassgateError as exc:
            return exc

    def written(
        connection: Connection, begun: Begun[R] | ChallengeRecord, checked: V | PassgateError
    ) -> T | PassgateError:
        if not isinstance(begun, Begun):  # not this ceremony's challenge: burnt, nothing else
            return _refused(failure)
        outcome: T | PassgateError
        if isinstance(checked, PassgateError):
            outcome = checked
        else:
            try:
                if not savepoint:  # `write` raises only before its first write
                    outcome = write(connection, begun, checked)
                else:
                    with prepared.savepoint(connection):
                        outcome = write(connection, begun, checked)
            except PassgateError as exc:
                outcome = exc
        return outcome if consumed is None else consumed(connection, begun.record, outcome)

    if ctx.db.is_sqlite:
        looked = await ctx.db.run(lambda connection: looked_up(connection, consume=False), write=False)
        if looked is None:
            return _refused(failure)
        checked = verdict(looked)
        assert client_data is not None
        challenge = client_data.challenge

        def commit(connection: Connection) -> T | PassgateError:
            if not challenges.use(connection, challenge, now()):
                return _refused(failure)  # another finish used it meanwhile, or it expired
            return written(connection, looked, checked)

        return await ctx.db.run(commit)

    # PostgreSQL locks rows, not the database: one unit of work consumes the challenge
    # first, then reads, checks and writes (`write` still re-reads: another transaction may commit
    # while this one checks).
    def at_once(connection: Connection) -> T | PassgateError:
        found = looked_up(connection, consume=True)
        return _refused(failure) if found is None else written(connection, found, verdict(found))

    return await ctx.db.run(at_once)


def read_nothing(_connection: Connection, _record: ChallengeRecord) -> None:
    """`finish_verified`'s `read` for a check that needs only the challenge (a registration's)."""
    return None


def _belongs(record: ChallengeRecord, ctx: Context, purpose: Purpose) -> bool:
    return record.purpose == purpose and record.tenant_id == ctx.tenant_id


def _refused(failure: type[CeremonyFailed]) -> CeremonyFailed:
    return failure(detail="challenge unknown, expired, used or issued for another purpose")
