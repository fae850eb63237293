"""The forward-auth gate (docs/proxies.md): may this session open this URL?

`Gate.decide` answers from memory on the hot path: the token's signature is checked once per token
string, the session is re-read at most once per revocation window (`services/revocation.py`), and the
rules are compiled at start (`services/rules.py`). Outcomes:

    204  allowed: identity headers for the upstream
    401  not signed in, session ended, or a fresher passkey check is needed (`reauth_required`)
    403  signed in, but not a listed user or group member
    400  the proxy's query names an unknown option or rule (fails closed); the app's own query
         (passed on by Caddy's `uri` without `?`) is never a 400
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote

from passgate.errors import DuplicateCookie, NotAuthenticated
from passgate.memo import Memo
from passgate.services.context import Context
from passgate.services.return_url import safe_return_url
from passgate.services.revocation import MAX_ENTRIES, Headers, Known, SessionMemory
from passgate.services.rules import Requirement, RuleBook, Verdict, judge
from passgate.services.sessions import Current, is_alive
from passgate.services.tokens import SessionClaims
from passgate.store.database import now

SIGNIN_PATH = "/signin"


class Decision(NamedTuple):  # a tuple: built on every request, so cheaper than a frozen dataclass
    status: int
    code: str
    message: str
    headers: Headers = ()  # identity headers when allowed
    user_name: str = ""
    rule: str = ""  # the requirement that refused

    @property
    def allowed(self) -> bool:
        return self.status == 204

    @property
    def recheck(self) -> bool:
        return self.code == "reauth_required"


NOT_SIGNED_IN = Decision(401, "not_authenticated", "Sign in to continue.")
SESSION_ENDED = Decision(401, "session_ended", "Your session has ended. Sign in again.")
DUPLICATE_COOKIE = Decision(401, DuplicateCookie.code, DuplicateCookie.message)


class Gate:
    """Per-process gate state: compiled rules and the session memory."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.settings = ctx.settings
        self.rules = RuleBook.for_settings(ctx.settings)
        self.memory = SessionMemory(ctx, ctx.settings.revocation_window)
        self._allow: Memo[str, tuple[Known, Decision]] = Memo(MAX_ENTRIES)  # as many as the memory

    async def decide(self, token: str | None, query: bytes, host: str | None, uri: str | None) -> Decision:
        """The decision for one proxied request (`host` and `uri` as forwarded: raw, None when unknown).
        Raises BadRequest for a bad rule query."""
        requirements = self.rules.from_proxy(query, uri) if query else ()
        if self.rules.located:
            requirements += self.rules.for_target(host, uri)
        if not token:
            return NOT_SIGNED_IN
        found = self.memory.cached(token)
        if found is None:
            try:
                found = await self.memory.lookup(token)
            except NotAuthenticated:
                return SESSION_ENDED
        claims, known = found
        current = known.current
        if current is None or not self._alive(current, claims):
            return SESSION_ENDED
        if not requirements:
            return self._allowed(current.session.id, known)
        return self._judged(requirements, current, known)

    def _allowed(self, session_id: str, known: Known) -> Decision:
        """The 204 for this session as last read, built once per read."""
        entry = self._allow.get(session_id)
        if entry is None or entry[0] is not known:
            user_name = known.current.user.user_name if known.current else ""
            entry = (known, Decision(204, "allowed", "", known.headers, user_name))
            self._allow.remember(session_id, entry, size=len(session_id))
        return entry[1]

    def _judged(self, requirements: tuple[Requirement, ...], current: Current, known: Known) -> Decision:
        verdict, rule = judge(requirements, current, known.groups)
        user_name = current.user.user_name
        if verdict is Verdict.ALLOW:
            return self._allowed(current.session.id, known)
        if verdict is Verdict.FORBIDDEN:
            return Decision(403, "forbidden", "Your account is not allowed here.", (), user_name, rule)
        return Decision(
            401, "reauth_required", "Confirm it's you with your passkey to continue.", (), user_name, rule
        )

    def _alive(self, current: Current, claims: SessionClaims) -> bool:
        at = now()
        return claims.expires_at > at and is_alive(
            self.ctx, current.session, current.user, user_id=claims.user_id, at=at
        )

    def return_url(self, original_url: str | None) -> str | None:
        """The original URL when it may be returned to (allowed host, no tricks)."""
        return safe_return_url(self.settings, original_url) if original_url else None

    def signin_url(self, return_url: str | None, *, recheck: bool) -> str:
        """Passgate's sign-in page (`/signin?return_to=…`, plus `reauth=1` for a re-check)."""
        query = []
        if return_url:
            query.append("return_to=" + quote(return_url, safe=""))
        if recheck:
            query.append("reauth=1")
        return f"{self.settings.public_url}{SIGNIN_PATH}" + ("?" + "&".join(query) if query else "")
