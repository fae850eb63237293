"""The session cookie: HttpOnly, SameSite=Lax, and Secure with the `__Host-` prefix on https.

With `PASSGATE_COOKIE_DOMAIN` the cookie carries `Domain=` so one sign-in covers every app of that
domain behind the forward-auth gate; `__Host-` forbids `Domain=`, so it is then `__Secure-passgate`
(the deliberate exception of SECURITY FA-09 / ASVS 3.3.3), still `Secure; HttpOnly; SameSite=Lax`."""

from __future__ import annotations

from starlette.responses import Response

from passgate.services.context import Context
from passgate.services.sessions import SignedIn
from passgate.store.database import now

DEVICE_COOKIE = "passgate-device"


def set_session(response: Response, ctx: Context, signed_in: SignedIn) -> None:
    settings = ctx.settings
    response.set_cookie(
        settings.session_cookie_name,
        signed_in.token,
        max_age=max(0, int(signed_in.session.expires_at - now())),
        path="/",
        domain=settings.cookie_domain or None,
        secure=settings.secure_cookies,
        httponly=True,
        samesite="lax",
    )


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
