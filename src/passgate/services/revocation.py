"""Revocation: ending sessions and device links, and making every process see it before its next decision.

Ending access (sign-out here or everywhere, another session ended, a passkey removed or flagged, an
account disabled or deleted, a group changed) writes the sessions' rows away and one entry per ended
session (or per user) to the revocation log, in the same transaction, and audits why.

The forward-auth fast path remembers, per process, verified tokens and recently read sessions
(`SessionMemory`). A token string that verified once stays verified until its `exp` (the signature cannot
change). A session (with its user and groups) is remembered until the revocation log says otherwise:

- in the process that ended it, the memory forgets it before the ending request answers;
- every other worker and instance learns of new log entries through a cheap change signal (SQLite's
  `PRAGMA data_version`, polled every few milliseconds; PostgreSQL `LISTEN/NOTIFY`) and forgets them; a
  lost signal connection forgets everything and reads afresh (`follow`);
- as a backstop, nothing is remembered longer than `revocation_window` seconds.

The database stays the truth; losing this memory costs one read; it never decides anything alone
(OWASP ASVS 5.0 V7.4.1, V7.4.2: session termination takes effect at once on every surface).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import anyio
from sqlalchemy import Connection

from passgate.errors import NotAuthenticated, NotFound
from passgate.memo import Memo
from passgate.services import device_links, stepup
from passgate.services.context import Context
from passgate.services.sessions import Current, seen
from passgate.services.stepup import Action
from passgate.services.tokens import LONGEST_TOKEN, SessionClaims
from passgate.store import audit, groups, revocations, sessions
from passgate.store.database import now

log = logging.getLogger("passgate.revocation")
SIGNAL_INTERVAL = 0.005  # seconds between SQLite change checks (one PRAGMA on an idle connection)
LOG_KEPT = 3600.0  # seconds a revocation log entry is kept (every process reads it within milliseconds)

# Sessions (with their user, groups and headers: ~1.6 kB) and tokens remembered per process. More
# sessions than this active within one `revocation_window` cost a database read each, nothing else.
MAX_ENTRIES = 4096
Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Known:
    """A session as last read: None when it no longer exists (or its user is gone)."""

    current: Current | None
    groups: frozenset[str]
    headers: Headers  # the identity headers of a 204, built once per read
    read_at: float  # time.monotonic()


def identity_headers(current: Current, group_names: list[str]) -> Headers:
    """`x-auth-user-id`, `Remote-User`, `Remote-Name`, `Remote-Email`, `Remote-Groups`. Values are UTF-8;
    names were cleaned of control characters when stored.

    `Remote-Email` is the address an administrator set (`passgate user email`), else empty: never the
    user name, even one that looks like an address, since nobody checked that its holder owns it and
    apps match addresses case-insensitively (`Alice@Example.com` must not open alice's app account)."""
    user = current.user
    headers = [
        (b"x-auth-user-id", user.id.encode()),
        (b"remote-user", _value(user.user_name)),
        (b"remote-name", _value(user.display_name or user.user_name)),
    ]
    # Always present, empty when unknown: some proxies pass a placeholder on for a missing header.
    headers.append((b"remote-email", _value(user.email) if user.email else b""))
    headers.append((b"remote-groups", ",".join(group_names).encode()))
    headers.append((b"cache-control", b"no-store"))
    return tuple(headers)


def _value(text: str) -> bytes:
    return "".join(char for char in text if char >= " " and char != "\x7f").encode()


class SessionMemory:
    """Verified tokens and recently read sessions; `window` 0 reads the database on every request."""

    def __init__(self, ctx: Context, window: float, max_entries: int = MAX_ENTRIES):
        self.ctx = ctx
        self.window = window
        self.max_entries = max_entries
        # Not the token verifier's own cache: being new *here* is what forces a fresh session read after a
        # sign-in or re-check, even when `/auth/me` already verified the new token.
        self._tokens: Memo[str, SessionClaims] = Memo(max_entries, longest=LONGEST_TOKEN)
        self._sessions: Memo[str, Known] = Memo(max_entries)
        self._reading: dict[str, anyio.Event] = {}  # reads under way: one entry per awaiting read
        ctx.revocation_listeners.append(self.revoked)

    def cached(self, token: str) -> tuple[SessionClaims, Known] | None:
        """The hot path: a token verified before and its session read within the window (no await)."""
        claims = self._tokens.get(token)
        if claims is None:
            return None
        known = self._sessions.get(claims.session_id)
        if known is None or time.monotonic() - known.read_at >= self.window:
            return None
        return claims, known

    async def lookup(self, token: str) -> tuple[SessionClaims, Known]:
        """The token's claims and its session; NotAuthenticated when forged, malformed or expired.

        A token seen for the first time reads its session afresh: signing in or the step-up re-check
        issues a new token, so what it changed (`auth_time`, UV) counts at once, not a window later."""
        claims = self._tokens.get(token)
        first_seen = claims is None
        if claims is None:
            claims = self._tokens.remember(token, self.ctx.tokens.verify(token), size=len(token))
        if claims.expires_at <= now():
            self._tokens.pop(token, None)
            raise NotAuthenticated("Your session has ended. Sign in again.", code="session_ended")
        if first_seen:
            return claims, await self._read(claims.session_id)
        known = self._sessions.get(claims.session_id)
        if known is not None and time.monotonic() - known.read_at < self.window:
            return claims, known  # the hot path: no await, no database
        return claims, await self.session(claims.session_id)

    async def session(self, session_id: str) -> Known:
        """The session as read within the window, reading it again (once for all waiters) when older."""
        known = self._sessions.get(session_id)
        if known is not None and time.monotonic() - known.read_at < self.window:
            return known
        reading = self._reading.get(session_id)
        if reading is not None:
            await reading.wait()
            known = self._sessions.get(session_id)
            if known is not None and time.monotonic() - known.read_at < self.window:
                return known
        return await self._read(session_id)

    async def _read(self, session_id: str) -> Known:
        event = self._reading[session_id] = anyio.Event()  # later callers wait for this read
        try:
            known = await self.ctx.db.run(lambda connection: _read(connection, session_id), write=False)
            if known.current is not None:
                await seen(self.ctx, known.current.session, now())
            return self._sessions.remember(session_id, known, size=len(session_id))
        finally:
            if self._reading.get(session_id) is event:
                self._reading.pop(session_id, None)  # `revoked` may have dropped it meanwhile
            event.set()

    def forget(self, session_id: str) -> None:
        """Drop one session from this process's memory (its next request reads the database)."""
        self._sessions.pop(session_id, None)
        self._reading.pop(session_id, None)  # a read under way may predate the revocation

    def revoked(self, user_id: str, session_ids: list[str] | None) -> None:
        """Forget ended sessions, or (`None`) every session of the user. Safe from a worker thread too:
        only atomic dict operations and a snapshot."""
        if session_ids is None:
            session_ids = [
                sid
                for sid, known in list(self._sessions.items())
                if known.current and known.current.user.id == user_id
            ]
        for session_id in session_ids:
            self.forget(session_id)

    def clear(self) -> None:
        self._sessions.clear()
        self._reading.clear()


def _read(connection: Connection, session_id: str) -> Known:
    found = sessions.get_with_user(connection, session_id)
    if found is None:
        return Known(current=None, groups=frozenset(), headers=(), read_at=time.monotonic())
    session, user = found
    current = Current(session=session, user=user)
    names = groups.for_user(connection, user.id)
    return Known(current, frozenset(names), identity_headers(current, names), time.monotonic())


# ------------------------------------------------------------------------------------- ending access


def end_sessions(
    connection: Connection,
    ctx: Context,
    *,
    user_id: str,
    reason: str,
    acting: str | None,
    session_ids: list[str] | None = None,
) -> None:
    """Log (for every process) and audit ended sessions; `None`: whatever any of the user's sessions
    were (ended, or their user, groups or state changed). This process forgets them at once."""
    if session_ids == []:
        return
    at = now()
    revocations.record(connection, user_id, session_ids, at)
    audit.record(
        connection,
        tenant_id=ctx.tenant_id,
        user_id=user_id,
        session_id=acting,
        kind="sessions_ended" if session_ids is not None else "user_changed",
        at=at,
        reason=reason,
        sessions=session_ids,
    )
    ctx.announce_revocation(user_id, session_ids)


def end_every_session(
    connection: Connection,
    ctx: Context,
    *,
    user_id: str,
    reason: str,
    acting: str | None,
    credential_id: bytes | None = None,
) -> list[str]:
    """End every session of a user (or those opened or last confirmed with one passkey) and revoke the
    user's device links: nothing made before this moment still opens the account."""
    ended = sessions.remove_all(connection, user_id, credential_id=credential_id)
    end_sessions(connection, ctx, user_id=user_id, reason=reason, acting=acting, session_ids=ended)
    device_links.revoke_all(connection, ctx, user_id=user_id, reason=reason, acting=acting)
    return ended


def end_session_now(connection: Connection, ctx: Context, current: Current, *, reason: str) -> None:
    """End the caller's own session inside a unit of work."""
    if sessions.remove(connection, current.session.id, current.user.id):
        end_sessions(
            connection,
            ctx,
            user_id=current.user.id,
            reason=reason,
            acting=current.session.id,
            session_ids=[current.session.id],
        )


async def sign_out(ctx: Context, current: Current) -> None:
    """End this session (`POST /auth/logout`)."""
    await ctx.db.run(lambda connection: end_session_now(connection, ctx, current, reason="signed_out"))


async def sign_out_everywhere(ctx: Context, current: Current) -> int:
    """End every session of the user and revoke their device links (needs a recent passkey check)."""
    await stepup.require(ctx, current, Action.END_ALL_SESSIONS)
    ended = await ctx.db.run(
        lambda connection: end_every_session(
            connection,
            ctx,
            user_id=current.user.id,
            reason="signed_out_everywhere",
            acting=current.session.id,
        )
    )
    return len(ended)


async def end_session(ctx: Context, current: Current, session_id: str) -> None:
    """End one of the user's sessions: this one is a sign-out; another needs a recent passkey check.
    A foreign or unknown id is NotFound."""
    if session_id == current.session.id:
        await sign_out(ctx, current)
        return
    await stepup.require(ctx, current, Action.END_OTHER_SESSION)

    def work(connection: Connection) -> None:
        if not sessions.remove(connection, session_id, current.user.id):
            raise NotFound("No such session.", code="session_not_found")
        end_sessions(
            connection,
            ctx,
            user_id=current.user.id,
            reason="ended_by_another_session",
            acting=current.session.id,
            session_ids=[session_id],
        )

    await ctx.db.run(work)


async def follow(ctx: Context, memory: SessionMemory, interval: float = SIGNAL_INTERVAL) -> None:
    """Keep this process's memory true to the revocation log, for as long as the process runs."""
    while True:
        try:
            async for entries in revocations.follow(ctx.db, interval):
                for _entry_id, user_id, session_id in entries:
                    memory.revoked(user_id, [session_id] if session_id else None)
        except Exception as exc:  # a lost connection: what it missed is unknown, so forget everything
            log.warning("revocation signal lost (%s: %s); reading sessions afresh", type(exc).__name__, exc)
        memory.clear()
        await anyio.sleep(0.5)


def sweep(connection: Connection, at: float) -> int:
    return revocations.sweep(connection, at - LOG_KEPT)
