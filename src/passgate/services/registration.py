"""Sign-up: a new account with its first passkey, signed in at once."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Connection

from passgate.ceremony.encoding import b64url_decode, b64url_encode
from passgate.ceremony.registration import NewCredential, begin_registration, finish_registration
from passgate.errors import CeremonyFailed, Conflict, Forbidden
from passgate.metadata import describe
from passgate.services import ceremonies, names, sessions
from passgate.services.ceremonies import Client
from passgate.services.context import Context
from passgate.services.sessions import SignedIn
from passgate.store import audit, credentials, users
from passgate.store.database import now
from passgate.store.records import ChallengeRecord, CredentialRecord, UserRecord
from passgate.useragent import passkey_name

USER_HANDLE_BYTES = 32  # opaque and random: never derived from the name (W3C WebAuthn L3 §14.6.1)


def _name_taken(user_name: str) -> Conflict:
    return Conflict(f"The name {user_name!r} is taken. Choose another.", code="user_name_taken")


async def begin(ctx: Context, *, user_name: str, display_name: str, client: Client) -> dict[str, Any]:
    """Creation options for a new account (discoverable passkey; UV per policy)."""
    if not ctx.settings.registration_open:
        raise Forbidden(
            "Sign-up is closed here. Ask an administrator for an invitation link.", code="signup_closed"
        )
    name = names.user_name(user_name, new=True)  # shown as typed; unique by its key (look-alikes too)
    display_name = names.clean(display_name, field="display_name", required=False) or name.shown
    user_handle = secrets.token_bytes(USER_HANDLE_BYTES)
    options, challenge = begin_registration(
        ctx.rp, user_handle=user_handle, user_name=name.shown, display_name=display_name, exclude=[]
    )
    state = {
        "user_name": name.shown,
        "user_key": name.key,
        "display_name": display_name,
        "user_handle": b64url_encode(user_handle),
        "origin": client.origin,
    }

    def work(connection: Connection) -> None:
        if users.key_exists(connection, ctx.tenant_id, name.key):
            raise _name_taken(name.shown)
        ceremonies.issue(connection, ctx, challenge=challenge, purpose="register", state=state)

    await ctx.db.run(work, atomic=False)  # the unique key checks the name again when the account is made
    return options


async def finish(ctx: Context, *, credential: dict[str, Any], client: Client) -> SignedIn:
    """Verify the new passkey (with no transaction open), then create the account and start its session."""

    def check(begun: ceremonies.Begun[None]) -> NewCredential:
        return verify_new_passkey(ctx, credential, begun.record)

    def write(connection: Connection, begun: ceremonies.Begun[None], new: NewCredential) -> SignedIn:
        state = begun.record.state
        try:
            user = users.create(
                connection,
                tenant_id=ctx.tenant_id,
                user_name=str(state["user_name"]),
                user_key=str(state["user_key"]),
                display_name=str(state["display_name"]),
                user_handle=b64url_decode(state["user_handle"]),
                at=now(),
            )
        except users.NameTaken:
            raise _name_taken(str(state["user_name"])) from None
        return store_and_sign_in(connection, ctx, user=user, new=new, client=client, first=True)

    return ceremonies.raised(
        await ceremonies.finish_verified(
            ctx, credential, "register", read=ceremonies.read_nothing, check=check, write=write
        )
    )


def verify_new_passkey(ctx: Context, credential: dict[str, Any], record: ChallengeRecord) -> NewCredential:
    """The check of a new first-party passkey (sign-up, the account page, a device link): W3C WebAuthn
    L3 §7.1 against the ceremony's challenge, from the origin that began it."""
    return finish_registration(
        ctx.rp, credential=credential, expected_challenge=record.challenge, origin=record.state.get("origin")
    )


def store_credential(
    connection: Connection,
    ctx: Context,
    *,
    user: UserRecord,
    new: NewCredential,
    session_id: str | None = None,
    user_agent: str | None = None,
    is_mfa: bool = False,
    first: bool = False,
) -> None:
    """Persist a verified credential (W3C WebAuthn L3 §7.1 steps 26-27); an id already known is refused.
    A passkey whose authenticator is unknown by AAGUID is named after the device that made it, when a
    browser made it (`user_agent`; the passkey API's backends name their own). `is_mfa`: a passkey-API
    second factor. `first`: the account was just created, so no other passkey's name is taken."""
    at = now()
    record = CredentialRecord(
        credential_id=new.credential_id,
        tenant_id=ctx.tenant_id,
        user_id=user.id,
        public_key=new.public_key,
        algorithm=new.algorithm,
        sign_count=new.sign_count,
        transports=",".join(new.transports),
        aaguid=new.aaguid,
        backup_eligible=new.backup_eligible,
        backup_state=new.backup_state,
        uv_initialized=new.user_verified,
        attestation_format=new.attestation_format,
        rp_id=ctx.rp.rp_id,
        name=_device_name(connection, user, new, user_agent, first) if user_agent is not None else "",
        created_at=at,
        last_used_at=at,
        last_verified_at=at if new.user_verified else None,
        flagged_at=None,
        flag_reason=None,
        is_mfa=is_mfa,
    )
    try:
        credentials.create(connection, record)
    except credentials.AlreadyRegistered:
        raise CeremonyFailed("This passkey is already registered.", code="credential_exists") from None
    audit.record(
        connection,
        tenant_id=ctx.tenant_id,
        user_id=user.id,
        session_id=session_id,
        kind="credential_added",
        at=at,
        credential_id=b64url_encode(new.credential_id),
        aaguid=new.aaguid,
    )


def _device_name(
    connection: Connection, user: UserRecord, new: NewCredential, user_agent: str, first: bool
) -> str:
    """ "" when the authenticator is known by its AAGUID (its name is shown); else "Chrome on Linux"…"""
    if describe(new.aaguid) is not None:
        return ""
    taken = [
        record.name or (info.name if (info := describe(record.aaguid)) else "Passkey")
        for record in ([] if first else credentials.for_user(connection, user.id))
    ]
    return passkey_name(user_agent, taken)


def store_and_sign_in(
    connection: Connection,
    ctx: Context,
    *,
    user: UserRecord,
    new: NewCredential,
    client: Client,
    first: bool = False,
) -> SignedIn:
    store_credential(connection, ctx, user=user, new=new, user_agent=client.user_agent, first=first)
    return sessions.start(
        connection,
        ctx,
        user=user,
        credential_id=new.credential_id,
        user_verified=new.user_verified,
        backup_eligible=new.backup_eligible,
        client=client,
    )
