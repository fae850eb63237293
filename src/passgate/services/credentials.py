"""A signed-in user's passkeys: add one, rename, delete (with the core's rules), and the account view."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from passgate.ceremony.encoding import b64url_encode
from passgate.ceremony.registration import NewCredential, begin_registration
from passgate.errors import BadRequest, Conflict, NotFound, ReauthRequired
from passgate.metadata import describe
from passgate.services import ceremonies, names, revocation, stepup
from passgate.services import sessions as session_service
from passgate.services.ceremonies import Client
from passgate.services.context import Context
from passgate.services.registration import store_credential, verify_new_passkey
from passgate.services.sessions import Current
from passgate.services.stepup import Action
from passgate.store import audit, credentials, groups, links, sessions, users
from passgate.store.database import now
from passgate.store.records import CredentialRecord, LinkRecord, SessionRecord, UserRecord


async def begin_add(ctx: Context, current: Current, client: Client) -> dict[str, Any]:
    """Creation options for another passkey on the signed-in account (existing ones excluded); needs a
    recent passkey check."""
    await stepup.require(ctx, current, Action.ADD_PASSKEY)
    user = current.user

    def work(connection: Connection) -> dict[str, Any]:
        existing = credentials.ids_for_user(connection, user.id)
        options, challenge = begin_registration(
            ctx.rp,
            user_handle=user.user_handle,
            user_name=user.user_name,
            display_name=user.display_name,
            exclude=existing,
        )
        ceremonies.issue(
            connection,
            ctx,
            challenge=challenge,
            purpose="add",
            state={"origin": client.origin},
            user_id=user.id,
            session_id=current.session.id,
        )
        return options

    return await ctx.db.run(work)


async def finish_add(ctx: Context, current: Current, credential: dict[str, Any]) -> CredentialRecord:
    """Verify and store the new passkey for the user whose session began the ceremony. The session must
    still be signed in, with a recent passkey check, when the ceremony finishes (a WebSocket ceremony
    may have begun before a sign-out)."""
    await stepup.require(ctx, current, Action.ADD_PASSKEY)

    def check(begun: ceremonies.Begun[None]) -> NewCredential:
        record = begun.record
        if record.user_id != current.user.id or record.session_id != current.session.id:
            raise BadRequest("This ceremony belongs to another session.", code="ceremony_mismatch")
        return verify_new_passkey(ctx, credential, record)

    def write(connection: Connection, _begun: ceremonies.Begun[None], new: NewCredential) -> CredentialRecord:
        if not stepup.allows(
            ctx, session_service.still_signed_in(connection, ctx, current), Action.ADD_PASSKEY
        ):
            raise ReauthRequired()
        store_credential(
            connection,
            ctx,
            user=current.user,
            new=new,
            session_id=current.session.id,
            user_agent=current.session.user_agent,
        )
        stored = credentials.get(connection, new.credential_id)
        assert stored is not None
        return stored

    return ceremonies.raised(
        await ceremonies.finish_verified(
            ctx, credential, "add", read=ceremonies.read_nothing, check=check, write=write
        )
    )


async def rename(ctx: Context, current: Current, credential_id: bytes, name: str) -> None:
    """Rename one of the user's passkeys (needs a recent passkey check)."""
    name = names.clean(name, field="name", required=False)
    await stepup.require(ctx, current, Action.RENAME_PASSKEY)

    def work(connection: Connection) -> None:
        if not credentials.rename(connection, credential_id, current.user.id, name):
            raise NotFound("No such passkey on this account.", code="credential_not_found")
        _audit(connection, ctx, current, "credential_renamed", credential_id, name=name)

    await ctx.db.run(work)


async def delete(ctx: Context, current: Current, credential_id: bytes) -> int:
    """Remove a passkey: needs a recent passkey check; never the current session's, never the last.

    The sessions it opened (or last confirmed) end with it, and the user's device links are revoked
    (OWASP ASVS 5.0 V7.4.3). Returns how many sessions ended."""
    await stepup.require(ctx, current, Action.DELETE_PASSKEY)
    if current.session.credential_id == credential_id:
        raise Conflict(
            "You signed in with this passkey, so it can't be removed now. "
            "Sign in with another passkey first.",
            code="credential_in_use",
        )

    def work(connection: Connection) -> int:
        owned = _owned(connection, current, credential_id)
        if len(owned) <= 1:
            raise Conflict(
                "This is your only passkey. Add another before removing it.", code="last_credential"
            )
        credentials.remove(connection, credential_id, current.user.id)
        _audit(connection, ctx, current, "credential_removed", credential_id)
        ended = revocation.end_every_session(
            connection,
            ctx,
            user_id=current.user.id,
            reason="passkey_removed",
            acting=current.session.id,
            credential_id=credential_id,
        )
        return len(ended)

    return await ctx.db.run(work)


async def unblock(ctx: Context, current: Current, credential_id: bytes) -> None:
    """Clear the block a sign-count regression put on one of the user's passkeys (W3C WebAuthn L3 §6.1.1).

    Needs a recent passkey check made with another passkey (a clone cannot vouch for itself); audited.
    """
    await stepup.require(ctx, current, Action.UNBLOCK_PASSKEY)
    if current.session.credential_id == credential_id:
        raise ReauthRequired(
            "Confirm it's you with another passkey to unblock this one.", code="reauth_other_passkey"
        )

    def work(connection: Connection) -> None:
        _owned(connection, current, credential_id)
        credentials.clear_flag(connection, credential_id)
        _audit(connection, ctx, current, "credential_unblocked", credential_id, by="owner")

    await ctx.db.run(work)


def _audit(
    connection: Connection, ctx: Context, current: Current, kind: str, credential_id: bytes, **detail: object
) -> None:
    audit.record(
        connection,
        tenant_id=ctx.tenant_id,
        user_id=current.user.id,
        session_id=current.session.id,
        kind=kind,
        at=now(),
        credential_id=b64url_encode(credential_id),
        **detail,
    )


def _owned(connection: Connection, current: Current, credential_id: bytes) -> set[bytes]:
    """The user's credential ids; NotFound unless `credential_id` is one of them."""
    owned = {item for item, _ in credentials.ids_for_user(connection, current.user.id)}
    if credential_id not in owned:
        raise NotFound("No such passkey on this account.", code="credential_not_found")
    return owned


async def account(ctx: Context, current: Current) -> dict[str, Any]:
    """Seed 003's user-info: the user, their passkeys (with authenticator names/icons) and sessions."""

    def work(
        connection: Connection,
    ) -> tuple[UserRecord | None, list[CredentialRecord], list[SessionRecord], list[str], list[LinkRecord]]:
        return (
            users.get(connection, current.user.id),
            credentials.for_user(connection, current.user.id),
            sessions.for_user(connection, current.user.id),
            groups.for_user(connection, current.user.id),
            links.for_user(connection, current.user.id, now()),
        )

    user, creds, user_sessions, user_groups, user_links = await ctx.db.run(work, write=False)
    user = user or current.user
    aaguid_info = {c.aaguid: info.to_json() for c in creds if (info := describe(c.aaguid)) is not None}
    return {
        "status": "success",
        "user": {**user_json(user), "groups": user_groups},
        "credentials": [credential_json(c, current) for c in creds],
        "sessions": [session_json(s, current) for s in user_sessions],
        "device_links": [link_json(link, current) for link in user_links],
        "aaguid_info": aaguid_info,
    }


def user_json(user: UserRecord) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "user_name": user.user_name,
        "display_name": user.display_name,
        "created_at": iso(user.created_at),
        "last_seen": iso(user.last_seen_at),
        "visits": user.visits,
    }


def credential_json(record: CredentialRecord, current: Current) -> dict[str, Any]:
    info = describe(record.aaguid)
    return {
        "credential_id": b64url_encode(record.credential_id),
        "name": record.name or (info.name if info else "Passkey"),
        "custom_name": record.name or None,
        "aaguid": record.aaguid,
        "authenticator": info.name if info else None,
        "created_at": iso(record.created_at),
        "last_used": iso(record.last_used_at),
        "last_verified": iso(record.last_verified_at),
        "sign_count": record.sign_count,
        "synced": record.backup_state,
        "backup_eligible": record.backup_eligible,
        "transports": [t for t in record.transports.split(",") if t],
        "algorithm": record.algorithm,
        "flagged": record.flagged_at is not None,
        "is_current_session": record.credential_id == current.session.credential_id,
    }


def session_json(record: SessionRecord, current: Current) -> dict[str, Any]:
    return {
        "session_id": record.id,
        "created_at": iso(record.created_at),
        "last_seen": iso(record.last_seen_at),
        "auth_time": iso(record.auth_time),
        "user_agent": record.user_agent,
        "ip": record.ip,
        "credential_id": b64url_encode(record.credential_id) if record.credential_id else None,
        "amr": record.amr.split(),
        "is_current": record.id == current.session.id,
    }


def link_json(record: LinkRecord, current: Current) -> dict[str, Any]:
    return {
        "link_id": record.id,
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "created_by": record.created_by,  # "user" (a session of the account) or "admin" (the CLI)
        "session_id": record.session_id,
        "by_this_session": record.session_id == current.session.id,
    }


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
