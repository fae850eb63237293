"""`/auth`: the signed-in user's passkeys and sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from passgate.ceremony.encoding import b64url_decode
from passgate.services import credentials, device_links, revocation, users
from passgate.services.stepup import Action, acts
from passgate.web.deps import Caller, Ctx, SignedIn
from passgate.web.schemas import (
    CredentialRef,
    DisplayName,
    LinkRef,
    RegistrationCredential,
    Rename,
    SessionRef,
)

router = APIRouter(prefix="/auth", tags=["account"])


@router.post("/credentials/begin", summary="Begin adding a passkey")
@acts(Action.ADD_PASSKEY)
async def add_begin(ctx: Ctx, current: SignedIn, client: Caller) -> dict[str, Any]:
    """Creation options for another passkey on this account; existing ones are in `excludeCredentials`."""
    return await credentials.begin_add(ctx, current, client)


@router.post("/credentials/finish", summary="Finish adding a passkey")
@acts(Action.ADD_PASSKEY)
async def add_finish(body: RegistrationCredential, ctx: Ctx, current: SignedIn) -> dict[str, Any]:
    """Body: `credential.toJSON()`. Stores the passkey on the signed-in account."""
    record = await credentials.finish_add(ctx, current, body.model_dump(exclude_none=True))
    return {
        "status": "success",
        "message": "Passkey added",
        "credential": credentials.credential_json(record, current),
    }


@router.post("/user-info", summary="Account details")
@acts(Action.VIEW_ACCOUNT)
async def user_info(ctx: Ctx, current: SignedIn) -> dict[str, Any]:
    """The user (`visits`, `last_seen`), their passkeys (authenticator name and icon by AAGUID in
    `aaguid_info`) and their sessions."""
    return await credentials.account(ctx, current)


@router.post("/rename-credential", summary="Rename a passkey")
@acts(Action.RENAME_PASSKEY)
async def rename_credential(body: Rename, ctx: Ctx, current: SignedIn) -> dict[str, str]:
    """Give one of your passkeys a name of your choice (empty: the authenticator's name)."""
    await credentials.rename(
        ctx, current, b64url_decode(body.credential_id, field="credential_id"), body.name
    )
    return {"status": "success", "message": "Passkey renamed"}


@router.post("/delete-credential", summary="Remove a passkey")
@acts(Action.DELETE_PASSKEY)
async def delete_credential(body: CredentialRef, ctx: Ctx, current: SignedIn) -> dict[str, Any]:
    """Refuses the passkey this session signed in with (`409 credential_in_use`) and the last one
    (`409 last_credential`). Every session opened (or last confirmed) with the passkey ends
    (`sessions_ended` says how many) and your outstanding device links are revoked."""
    ended = await credentials.delete(ctx, current, b64url_decode(body.credential_id, field="credential_id"))
    return {"status": "success", "message": "Credential deleted successfully", "sessions_ended": ended}


@router.post("/clear-credential-flag", summary="Unblock a passkey")
@acts(Action.UNBLOCK_PASSKEY)
async def clear_credential_flag(body: CredentialRef, ctx: Ctx, current: SignedIn) -> dict[str, str]:
    """A passkey whose sign-in counter went backwards (a possible copy) is blocked, and the sessions it
    opened ended; its owner can unblock it after a recent check with *another* passkey
    (`401 reauth_other_passkey` otherwise). Admins: `passgate user unflag`."""
    await credentials.unblock(ctx, current, b64url_decode(body.credential_id, field="credential_id"))
    return {"status": "success", "message": "Passkey unblocked"}


@router.post("/delete-session", summary="End one session")
@acts(Action.END_OTHER_SESSION)
async def delete_session(body: SessionRef, ctx: Ctx, current: SignedIn) -> dict[str, str]:
    """Ends one of your sessions (e.g. a lost laptop's). Ending this very session is a sign-out and needs
    no check."""
    await revocation.end_session(ctx, current, body.session_id)
    return {"status": "success", "message": "Session ended"}


@router.get("/device-links", summary="Your outstanding device links")
async def list_device_links(ctx: Ctx, current: SignedIn) -> dict[str, Any]:
    """Device links that can still be used: when and by which session (or `admin`) each was made, and
    when it expires."""
    found = await device_links.outstanding(ctx, current)
    return {"status": "success", "device_links": [credentials.link_json(link, current) for link in found]}


@router.post("/revoke-device-link", summary="Revoke a device link")
@acts(Action.REVOKE_DEVICE_LINK)
async def revoke_device_link(body: LinkRef, ctx: Ctx, current: SignedIn) -> dict[str, str]:
    """The link stops working at once. `404 link_not_found` for an unknown, used, expired or foreign id."""
    await device_links.revoke(ctx, current, body.link_id)
    return {"status": "success", "message": "Device link revoked"}


@router.post("/set-display-name", summary="Change your display name")
@acts(Action.SET_DISPLAY_NAME)
async def set_display_name(body: DisplayName, ctx: Ctx, current: SignedIn) -> dict[str, str]:
    """The name your passkeys and the sites you sign in to show; empty restores your user name. Pages then
    call `PublicKeyCredential.signalCurrentUserDetails` so passkey pickers show the new name."""
    user = await users.set_display_name(ctx, current, body.display_name)
    return {
        "status": "success",
        "message": "Display name saved",
        "user_name": user.user_name,
        "display_name": user.display_name,
    }
