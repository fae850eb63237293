"""The forward-auth fast path's memory: verified tokens and recently read sessions, per process.

A token string that verified once stays verified until its `exp` (the signature cannot change), so
verified tokens are kept in a bounded map. A session (with its user and groups) is read from the
database at most once per `revocation_window` seconds per process; the database stays the truth, so
logout, logout-all, a deleted session or a disabled user is seen by every worker and instance within
the window (SECURITY FA-10). Losing this memory costs one read; it never decides anything alone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TypeVar

import anyio
from sqlalchemy import Connection

from passgate.errors import NotAuthenticated
from passgate.services.context import Context
from passgate.services.sessions import TOUCH_INTERVAL, Current
from passgate.services.tokens import SessionClaims
from passgate.store import groups, sessions
from passgate.store.database import now

MAX_ENTRIES = 20_000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Headers = tuple[tuple[bytes, bytes], ...]
V = TypeVar("V")


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
        self._tokens: dict[str, SessionClaims] = {}
        self._sessions: dict[str, Known] = {}
        self._reading: dict[str, anyio.Event] = {}

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
            claims = self.ctx.tokens.verify(token)
            _bounded_put(self._tokens, token, claims, self.max_entries)
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
            if known.current is not None and now() - known.current.session.last_seen_at > TOUCH_INTERVAL:
                at = now()
                await self.ctx.db.run(lambda connection: sessions.touch(connection, session_id, at))
            _bounded_put(self._sessions, session_id, known, self.max_entries)
            return known
        finally:
            if self._reading.get(session_id) is event:
                del self._reading[session_id]
            event.set()

    def forget(self, session_id: str) -> None:
        """Drop one session from this process's memory (its next request reads the database)."""
        self._sessions.pop(session_id, None)


def _read(connection: Connection, session_id: str) -> Known:
    found = sessions.get_with_user(connection, session_id)
    if found is None:
        return Known(current=None, groups=frozenset(), headers=(), read_at=time.monotonic())
    session, user = found
    current = Current(session=session, user=user)
    names = groups.for_user(connection, user.id)
    return Known(current, frozenset(names), identity_headers(current, names), time.monotonic())


def _bounded_put(store: dict[str, V], key: str, value: V, limit: int) -> None:
    if len(store) >= limit:
        for old in list(store)[: max(1, limit // 4)]:  # oldest first (dicts keep insertion order)
            del store[old]
    store[key] = value
