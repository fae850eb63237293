"""Sessions: start one after a ceremony, find the signed-in user from a token, end one or all."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection

from passgate.errors import NotAuthenticated
from passgate.services.ceremonies import Client
from passgate.services.context import Context
from passgate.store import audit, sessions, users
from passgate.store.database import now
from passgate.store.records import SessionRecord, UserRecord

TOUCH_INTERVAL = 60.0  # seconds between last-seen updates of one session


@dataclass(frozen=True, slots=True)
class Current:
    """The signed-in session and its user."""

    session: SessionRecord
    user: UserRecord


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A ceremony's outcome: the user, their session and the token for the cookie."""

    user: UserRecord
    session: SessionRecord
    token: str


def amr_for(*, user_verified: bool, backup_eligible: bool) -> str:
    """RFC 8176 methods: a synced passkey is a software key (`swk`), a device-bound one `hwk`;
    user verification adds `user` and makes it multi-factor (`mfa`)."""
    key = "swk" if backup_eligible else "hwk"
    return f"{key} user mfa" if user_verified else key


def start(
    connection: Connection,
    ctx: Context,
    *,
    user: UserRecord,
    credential_id: bytes,
    user_verified: bool,
    backup_eligible: bool,
    client: Client,
) -> SignedIn:
    """Create a session row for a user who just passed a ceremony, and its token."""
    at = now()
    record = SessionRecord(
        id=secrets.token_urlsafe(24),
        tenant_id=ctx.tenant_id,
        user_id=user.id,
        credential_id=credential_id,
        created_at=at,
        last_seen_at=at,
        auth_time=at,
        user_verified=user_verified,
        amr=amr_for(user_verified=user_verified, backup_eligible=backup_eligible),
        user_agent=client.user_agent[:400],
        ip=client.ip[:64],
        expires_at=at + ctx.settings.session_max_age,
    )
    sessions.create(connection, record)
    users.record_visit(connection, user.id, at)
    return SignedIn(user=user, session=record, token=token_for(ctx, record))


def refresh(
    connection: Connection,
    ctx: Context,
    current: SessionRecord,
    *,
    user: UserRecord,
    credential_id: bytes,
    user_verified: bool,
    backup_eligible: bool,
) -> SignedIn:
    """A signed-in passkey check (step-up): same session, new `auth_time`, new token."""
    at = now()
    values = {
        "auth_time": at,
        "last_seen_at": at,
        "credential_id": credential_id,
        "user_verified": user_verified,
        "amr": amr_for(user_verified=user_verified, backup_eligible=backup_eligible),
    }
    sessions.refresh_auth(connection, current.id, values)
    users.record_visit(connection, user.id, at)
    audit.record(
        connection,
        tenant_id=ctx.tenant_id,
        user_id=user.id,
        session_id=current.id,
        kind="stepup_passed",
        at=at,
    )
    record = SessionRecord(**{**{name: getattr(current, name) for name in current.__slots__}, **values})
    return SignedIn(user=user, session=record, token=token_for(ctx, record))


def token_for(ctx: Context, record: SessionRecord) -> str:
    return ctx.tokens.issue(
        session_id=record.id, user_id=record.user_id, issued_at=now(), expires_at=record.expires_at
    )


def still_signed_in(connection: Connection, ctx: Context, current: Current) -> Current:
    """The session re-read inside a unit of work (a ceremony that began before a sign-out, a disabled
    account or an ended session must not finish after it); NotAuthenticated when it has ended."""
    found = sessions.get_with_user(connection, current.session.id)
    if found is None or not is_alive(ctx, *found, user_id=current.user.id, at=now()):
        raise NotAuthenticated("Your session has ended. Sign in again.", code="session_ended")
    return Current(session=found[0], user=found[1])


def is_alive(ctx: Context, session: SessionRecord, user: UserRecord, *, user_id: str, at: float) -> bool:
    """The one rule for a session still being signed in (every surface: API, pages, gate, WebSockets)."""
    return at < alive_until(ctx, session, user, user_id=user_id)


def alive_until(ctx: Context, session: SessionRecord, user: UserRecord, *, user_id: str) -> float:
    """Until when (exclusive) the session is signed in if nothing is written: its expiry or its idle
    timeout, whichever comes first; 0 when it is not (another user's, or the user disabled)."""
    if session.user_id != user_id or user.disabled:
        return 0.0
    return min(session.expires_at, session.last_seen_at + ctx.settings.session_idle_timeout)


def quiet_until(ctx: Context, current: Current, token_expires_at: float) -> float:
    """Until when (exclusive) `authenticate` gives this `current` for its token and writes nothing, as
    long as the database does not change: the token's expiry, the session's (`alive_until`), and its
    next last-seen update."""
    session = current.session
    alive = alive_until(ctx, session, current.user, user_id=current.user.id)
    return min(token_expires_at, alive, session.last_seen_at + TOUCH_INTERVAL)


async def authenticate(ctx: Context, token: str | None) -> Current:
    """The session a token names.

    Raises NotAuthenticated if the token is forged or expired, the session idle, ended or revoked, or
    the user disabled."""
    if not token:
        raise NotAuthenticated()
    claims = ctx.tokens.verify(token)
    found = await _session_with_user(ctx, claims.session_id)
    at = now()
    if found is None:
        raise NotAuthenticated("Your session has ended. Sign in again.", code="session_ended")
    session, user = found
    if not is_alive(ctx, session, user, user_id=claims.user_id, at=at):
        raise NotAuthenticated("Your session has ended. Sign in again.", code="session_ended")
    await seen(ctx, session, at)
    return Current(session=session, user=user)


async def seen(ctx: Context, session: SessionRecord, at: float) -> None:
    """Record that `session` was used at `at`, at most once a minute per session (`TOUCH_INTERVAL`):
    one `UPDATE`, which needs no transaction of its own."""
    if at - session.last_seen_at > TOUCH_INTERVAL:
        await ctx.db.run(lambda connection: sessions.touch(connection, session.id, at), atomic=False)


async def _session_with_user(ctx: Context, session_id: str) -> tuple[SessionRecord, UserRecord] | None:
    """The session and its user as the database holds them: read again unless the database is unchanged
    since the last read (`Database.version`: at once for this process's writes, within milliseconds for
    another process's)."""
    mark = ctx.db.version()
    if mark is not None:
        known = ctx.session_reads.get(session_id)
        if known is not None and known[0] == mark:
            return known[1]  # type: ignore[return-value]
    found = await ctx.db.run(lambda connection: sessions.get_with_user(connection, session_id), write=False)
    if mark is not None:
        ctx.session_reads.remember(session_id, (mark, found), size=len(session_id))
    return found
