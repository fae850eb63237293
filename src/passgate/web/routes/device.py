"""`/auth`: device links — add a passkey on another device with a link, QR code or passphrase."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse

from passgate.errors import LinkInvalid
from passgate.services import device_links
from passgate.services.stepup import Action, acts
from passgate.web import cookies
from passgate.web.deps import Caller, Ctx, SignedIn
from passgate.web.ratelimit import limit
from passgate.web.routes.auth import signed_in_response
from passgate.web.schemas import DeviceToken, RegistrationCredential

router = APIRouter(prefix="/auth", tags=["device links"])
link_limit = [Depends(limit("device"))]


def _passphrase(request: Request, body: DeviceToken | None) -> str:
    token = (body.token if body else None) or request.cookies.get(cookies.DEVICE_COOKIE)
    return device_links.require_passphrase(token)


@router.post("/create-device-link", summary="Create a device link")
@acts(Action.CREATE_DEVICE_LINK)
async def create_device_link(ctx: Ctx, current: SignedIn) -> dict[str, Any]:
    """A single-use link (24 h) to add a passkey on another device: URL, QR code (SVG) and passphrase.
    `GET /auth/device-links` lists the outstanding ones, `POST /auth/revoke-device-link` revokes one."""
    link = await device_links.create(ctx, current)
    return {
        "status": "success",
        "message": "Device addition link generated successfully",
        "addition_link": link.url,
        "passphrase": link.passphrase,
        "qr_svg": link.qr_svg(),
        "expires_at": int(link.expires_at),
        "expires_in_hours": round(ctx.settings.device_link_ttl / 3600, 2),
    }


@router.post("/validate-device-token", dependencies=link_limit, summary="Check a device link")
@acts(Action.USE_DEVICE_LINK)
async def validate_device_token(
    request: Request, ctx: Ctx, body: DeviceToken | None = None
) -> dict[str, Any]:
    """Whether a passphrase (or the one a link just set) is valid, and for whom. Does not use it up."""
    passphrase = _passphrase(request, body)
    link, user = await device_links.validate(ctx, passphrase)
    return {
        "status": "success",
        "valid": True,
        "user_id": user.id,
        "user_name": user.user_name,
        "expires_at": int(link.expires_at),
    }


@router.post("/device/begin", dependencies=link_limit, summary="Begin adding this device")
@acts(Action.USE_DEVICE_LINK)
async def device_begin(
    request: Request, ctx: Ctx, client: Caller, body: DeviceToken | None = None
) -> dict[str, Any]:
    """Creation options for a passkey on this device for the link's user."""
    return await device_links.begin(ctx, _passphrase(request, body), client)


@router.post("/device/finish", summary="Finish adding this device")
@acts(Action.USE_DEVICE_LINK)
async def device_finish(body: RegistrationCredential, ctx: Ctx, client: Caller) -> JSONResponse:
    """Body: `credential.toJSON()`. Stores the passkey, uses up the link and signs this device in."""
    result = await device_links.finish(ctx, body.model_dump(exclude_none=True), client)
    response = signed_in_response(ctx, result, "Passkey added on this device")
    response.delete_cookie(cookies.DEVICE_COOKIE, path="/auth")
    return response


@router.get(
    "/{passphrase}",
    dependencies=link_limit,
    summary="Open a device link",
    response_class=RedirectResponse,
    status_code=303,
    responses={303: {"description": "To the page that adds a passkey on this device"}},
)
async def open_device_link(
    ctx: Ctx, passphrase: str = Path(pattern=r"^\w+(\.\w+){2,}$", max_length=200)
) -> RedirectResponse:
    """The link a QR code or message carries: remembers the passphrase briefly and opens the page."""
    try:
        await device_links.validate(ctx, passphrase)
        target = "/device?link=1"
    except LinkInvalid:
        target = "/device?link=invalid"
    response = RedirectResponse(target, status_code=303)
    response.headers["referrer-policy"] = "no-referrer"
    if passphrase.isascii():  # no real passphrase is anything else, and a header cannot carry it
        cookies.set_device_passphrase(response, ctx, passphrase)
    return response
