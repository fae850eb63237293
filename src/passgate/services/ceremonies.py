"""What every ceremony shares: issuing a challenge bound to its purpose, and finishing exactly once.

A finish consumes its challenge first, whatever happens next (W3C WebAuthn L3 §13.5.3), then runs its
checks and writes inside a savepoint: a failure rolls back every write but keeps the challenge burnt.

`finish_verified` is the same rule for a finish whose signature check is the bulk of its work (every
first-party finish: sign-in, sign-up, adding a passkey, a device link; the passkey API's still use
`finish`): it reads what the check needs, checks with no transaction open, then consumes the challenge
and writes in one short write transaction that re-reads whatever the check relied on and could have
changed. On SQLite the database-wide write lock is thus held for the writes alone, so workers are not
serialised on each other's verifies. PostgreSQL locks rows, not the database: there the three steps run in one
unit of work (one thread hop), with the same re-read.
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
    if record is None or not _belongs(record, ctx, purpose):
        return _refused(failure)
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
) -> T | PassgateError:
    """Finish a ceremony whose check (a signature verify) is most of its work: `read` what the check
    needs, `check` it (raises PassgateError), then consume the challenge (burnt whatever the outcome,
    W3C WebAuthn L3 §13.5.3) and `write`.

    On SQLite, whose one write lock serves the whole database, `read` runs in a read-only unit of work,
    `check` with no transaction open, and the consume and `write` in one short write unit. On PostgreSQL,
    which locks rows, all three run in one unit of work (one thread hop), the challenge consumed first as
    `finish` does. Either way `write` must re-read what the check relied on and another request could
    change meanwhile (a sign count, a flag). It runs in a savepoint, as `finish`'s steps do: a refusal it
    raises rolls back its writes, one it returns is committed with the burnt challenge (`savepoint=False`
    when it raises only before its first write).

    Returns the refusal instead of raising it, as `finish` does; a clientDataJSON that cannot be read
    raises BadRequest before anything is read or written. A challenge that does not exist is refused
    without a write transaction: there is nothing to burn."""
    client_data = read_client_data(credential)

    def begun_with(
        connection: Connection, record: ChallengeRecord | None
    ) -> Begun[R] | ChallengeRecord | None:
        if record is None or record.expires_at <= now() or not _belongs(record, ctx, purpose):
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
        if isinstance(checked, PassgateError):
            return checked
        assert isinstance(begun, Begun)
        try:
            if not savepoint:  # `write` raises only before its first write
                return write(connection, begun, checked)
            with prepared.savepoint(connection):
                return write(connection, begun, checked)
        except PassgateError as exc:
            return exc

    if ctx.db.is_sqlite:
        looked = await ctx.db.run(
            lambda connection: begun_with(connection, challenges.peek(connection, client_data.challenge)),
            write=False,
        )
        if looked is None:
            return _refused(failure)
        checked = verdict(looked)

        def commit(connection: Connection) -> T | PassgateError:
            if not challenges.use(connection, client_data.challenge, now()):
                return _refused(failure)  # another finish used it meanwhile, or it expired
            return written(connection, looked, checked)

        return await ctx.db.run(commit)

    # PostgreSQL locks rows, not the database: one unit of work (one thread hop) consumes the challenge
    # first, as `finish` does, then reads, checks and writes (`write` still re-reads: another
    # transaction may commit while this one checks).
    def at_once(connection: Connection) -> T | PassgateError:
        consumed = challenges.consume(connection, client_data.challenge, 0.0)  # expired too: judged below
        looked = begun_with(connection, consumed)
        return _refused(failure) if looked is None else written(connection, looked, verdict(looked))

    return await ctx.db.run(at_once)


def read_nothing(_connection: Connection, _record: ChallengeRecord) -> None:
    """`finish_verified`'s `read` for a check that needs only the challenge (a registration's)."""
    return None


def _belongs(record: ChallengeRecord, ctx: Context, purpose: Purpose) -> bool:
    return record.purpose == purpose and record.tenant_id == ctx.tenant_id


def _refused(failure: type[CeremonyFailed]) -> CeremonyFailed:
    return failure(detail="challenge unknown, expired, used or issued for another purpose")
