"""The session cookie: HttpOnly, SameSite=Lax, and Secure with the `__Host-` prefix on https.

With `PASSGATE_COOKIE_DOMAIN` the cookie carries `Domain=` so one sign-in covers every app of that
domain behind the forward-auth gate; `__Host-` forbids `Domain=`, so it is then `__Secure-passgate`
(the deliberate exception of ASVS 3.3.3), still `Secure; HttpOnly; SameSite=Lax`.

Every surface (the API, the pages, WebSockets, the forward-auth gate) reads the session cookie with
`session_value`: one parser, so no two surfaces can see different sessions in the same request.
"""

from __future__ import annotations

from starlette.responses import Response

from passgate.errors import DuplicateCookie
from passgate.memo import Memo
from passgate.services.context import Context
from passgate.services.sessions import SignedIn
from passgate.store.database import now

DEVICE_COOKIE = "passgate-device"


def session_value(header: str | None, name: str) -> str | None:
    """The value of the cookie `name` in a `Cookie` header (several headers joined with `; `).

    RFC 6265 §5.4 / §4.2.1: pairs are separated by `;`, and the name is everything before the first `=`
    (surrounding spaces trimmed), compared exactly. `prefs=a passgate=X` is one cookie, `prefs`. A name
    sent twice is refused (DuplicateCookie), never "first wins" or "last wins": a sibling host that can
    set a cookie for the shared domain could otherwise slip its own session in beside the victim's.
    """
    if not header or name not in header:
        return None
    found: str | None = None
    for pair in header.split(";"):
        key, equals, value = pair.partition("=")
        if equals and key.strip(" \t") == name:
            if found is not None:
                raise DuplicateCookie()
            found = value.strip(" \t")
    return found


def session_cookie(ctx: Context, signed_in: SignedIn) -> str:
    """The `Set-Cookie` value that signs a browser in (RFC 6265 §4.1; the attributes in the order
    Starlette writes them). The token is a JWT: base64url and dots, never quoted."""
    settings = ctx.settings
    max_age = max(0, int(signed_in.session.expires_at - now()))
    domain = f"; Domain={settings.cookie_domain}" if settings.cookie_domain else ""
    secure = "; Secure" if settings.secure_cookies else ""
    return (
        f"{settings.session_cookie_name}={signed_in.token}{domain}; HttpOnly; Max-Age={max_age}; Path=/; "
        f"SameSite=lax{secure}"
    )


MAX_REMEMBERED = 4096
LONGEST_COOKIE = 1024  # bytes: a Cookie header with a few cookies besides the session's (~340 bytes)
_DUPLICATE = "\0duplicate"  # no real cookie value contains NUL


class SessionCookie:
    """The session token in a request's `Cookie` headers, found with `session_value` and remembered per
    distinct header value (a bounded `Memo`): a browser sends the same header with every signed-in
    request, and the gate and `/auth/me` are answered on every one. DuplicateCookie, every time, for a
    header that carries the session cookie twice."""

    def __init__(self, name: str):
        self.name = name
        self._seen: Memo[bytes, str | None] = Memo(MAX_REMEMBERED, longest=LONGEST_COOKIE)

    def token(self, header: bytes) -> str | None:
        try:
            token = self._seen[header]
        except KeyError:
            try:
                token = session_value(header.decode("latin-1"), self.name)
            except DuplicateCookie:
                token = _DUPLICATE
            self._seen.remember(header, token, size=len(header))
        if token is _DUPLICATE:
            raise DuplicateCookie()
        return token

    def in_headers(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """From a request's raw headers (several `Cookie` headers are joined with `; `)."""
        values = [value for name, value in headers if name == b"cookie"]
        if not values:
            return None
        return self.token(values[0] if len(values) == 1 else b"; ".join(values))


def set_session(response: Response, ctx: Context, signed_in: SignedIn) -> None:
    response.headers.append("set-cookie", session_cookie(ctx, signed_in))


def clear_session(response: Response, ctx: Context) -> None:
    settings = ctx.settings
    response.delete_cookie(
        settings.session_cookie_name,
        path="/",
        domain=settings.cookie_domain or None,
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


def set_device_passphrase(response: Response, ctx: Context, passphrase: str) -> None:
    """Carries a device link's passphrase from `GET /auth/{passphrase}` to the page, briefly."""
    response.set_cookie(
        DEVICE_COOKIE,
        passphrase,
        max_age=600,
        path="/auth",
        secure=ctx.settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )
