"""Device links: a single-use, 24-hour way to add a passkey on another device, as a URL, a QR code
and a six-word passphrase (over 64 bits of entropy). The passphrase is the secret; only its SHA-256 is
stored. A user sees and revokes their outstanding links; signing out everywhere, disabling the account and
removing a passkey revoke them all."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection

from passgate.ceremony.registration import NewCredential, begin_registration
from passgate.errors import BadRequest, LinkInvalid, NotFound
from passgate.services import ceremonies, stepup
from passgate.services.ceremonies import Client
from passgate.services.context import Context
from passgate.services.registration import store_and_sign_in, verify_new_passkey
from passgate.services.sessions import Current, SignedIn
from passgate.services.stepup import Action
from passgate.store import audit, credentials, links, users
from passgate.store.database import now
from passgate.store.records import LinkRecord, UserRecord

PASSPHRASE = re.compile(r"^\w+(\.\w+){2,}$", re.ASCII)  # the words are ASCII; no case-folding tricks
WORDS = 6  # log2(len(wordlist)) * WORDS >= 64 bits (tested): guessing is hopeless even unthrottled


@dataclass(frozen=True, slots=True)
class NewLink:
    passphrase: str
    url: str
    expires_at: float

    def qr_svg(self) -> str:
        import segno  # only where a link is shown: not in every worker's memory

        return str(segno.make(self.url, error="m").svg_inline(scale=4, dark="#111", light="#fff"))

    def qr_terminal(self) -> str:
        import io

        import segno

        buffer = io.StringIO()
        segno.make(self.url, error="m").terminal(out=buffer, compact=True)
        return buffer.getvalue()


@cache
def _wordlist() -> tuple[str, ...]:
    from xkcdpass import xkcd_password

    from passgate.services import wordlist

    words = xkcd_password.generate_wordlist(wordfile=xkcd_password.locate_wordfile("eff-long"))
    return tuple(sorted({word for word in words if wordlist.pleasant(word)}))


def new_passphrase() -> str:
    words = _wordlist()
    return ".".join(secrets.choice(words) for _ in range(WORDS))


def _hash(passphrase: str) -> bytes:
    return hashlib.sha256(passphrase.strip().lower().encode()).digest()


def issue(
    connection: Connection, ctx: Context, user: UserRecord, *, created_by: str, session_id: str | None = None
) -> NewLink:
    passphrase = new_passphrase()
    at = now()
    record = LinkRecord(
        id=str(uuid.uuid4()),
        secret_hash=_hash(passphrase),
        tenant_id=ctx.tenant_id,
        user_id=user.id,
        created_by=created_by,
        created_at=at,
        expires_at=at + ctx.settings.device_link_ttl,
        session_id=session_id,
    )
    links.create(connection, record)
    _audit(connection, ctx, user.id, "link_created", session_id, link_id=record.id, by=created_by)
    return NewLink(
        passphrase=passphrase,
        url=f"{ctx.settings.public_url}/auth/{passphrase}",
        expires_at=at + ctx.settings.device_link_ttl,
    )


async def create(ctx: Context, current: Current) -> NewLink:
    """A link for the signed-in user; needs a recent passkey check."""
    await stepup.require(ctx, current, Action.CREATE_DEVICE_LINK)
    return await ctx.db.run(
        lambda connection: issue(
            connection, ctx, current.user, created_by="user", session_id=current.session.id
        )
    )


async def outstanding(ctx: Context, current: Current) -> list[LinkRecord]:
    """The user's links that can still be used, newest first."""
    return await ctx.db.run(
        lambda connection: links.for_user(connection, current.user.id, now()), write=False
    )


async def revoke(ctx: Context, current: Current, link_id: str) -> None:
    """Revoke one of the user's links (needs a recent passkey check); a foreign or unknown id is NotFound."""
    await stepup.require(ctx, current, Action.REVOKE_DEVICE_LINK)

    def work(connection: Connection) -> None:
        if not links.remove(connection, link_id, current.user.id):
            raise NotFound("No such device link.", code="link_not_found")
        _audit(connection, ctx, current.user.id, "link_revoked", current.session.id, link_id=link_id)

    await ctx.db.run(work)


def revoke_all(connection: Connection, ctx: Context, *, user_id: str, reason: str, acting: str | None) -> int:
    """Revoke every outstanding link of a user (audited when there were any)."""
    count = links.remove_all(connection, user_id)
    if count:
        _audit(connection, ctx, user_id, "links_revoked", acting, reason=reason, links=count)
    return count


def _audit(
    connection: Connection, ctx: Context, user_id: str, kind: str, session_id: str | None, **detail: object
) -> None:
    audit.record(
        connection,
        tenant_id=ctx.tenant_id,
        user_id=user_id,
        kind=kind,
        at=now(),
        session_id=session_id,
        **detail,
    )


def _find(connection: Connection, ctx: Context, passphrase: str) -> tuple[LinkRecord, UserRecord]:
    if not isinstance(passphrase, str) or not PASSPHRASE.match(passphrase.strip()):
        raise LinkInvalid()
    link = links.find(connection, _hash(passphrase), now())
    user = users.get(connection, link.user_id) if link else None
    if link is None or user is None or user.disabled or link.tenant_id != ctx.tenant_id:
        raise LinkInvalid()
    return link, user


async def validate(ctx: Context, passphrase: str) -> tuple[LinkRecord, UserRecord]:
    """The link and its user, without using it up; LinkInvalid when unknown, used or expired."""
    return await ctx.db.run(lambda connection: _find(connection, ctx, passphrase), write=False)


async def begin(ctx: Context, passphrase: str, client: Client) -> dict[str, Any]:
    """Creation options for a passkey on this device, for the link's user (its passkeys excluded)."""

    def work(connection: Connection) -> dict[str, Any]:
        link, user = _find(connection, ctx, passphrase)
        options, challenge = begin_registration(
            ctx.rp,
            user_handle=user.user_handle,
            user_name=user.user_name,
            display_name=user.display_name,
            exclude=credentials.ids_for_user(connection, user.id),
        )
        state = {"link_id": link.id, "origin": client.origin}
        ceremonies.issue(connection, ctx, challenge=challenge, purpose="device", state=state, user_id=user.id)
        return options

    return await ctx.db.run(work)


async def finish(ctx: Context, credential: dict[str, Any], client: Client) -> SignedIn:
    """Verify the new passkey, use up the link, and sign this device in."""

    def check(begun: ceremonies.Begun[None]) -> NewCredential:
        return verify_new_passkey(ctx, credential, begun.record)

    def write(connection: Connection, begun: ceremonies.Begun[None], new: NewCredential) -> SignedIn:
        record = begun.record
        link = links.consume(connection, str(record.state.get("link_id")), now())
        user = users.get(connection, link.user_id) if link else None
        if link is None or user is None or user.disabled or user.id != record.user_id:
            raise LinkInvalid()
        signed_in = store_and_sign_in(connection, ctx, user=user, new=new, client=client)
        _audit(connection, ctx, user.id, "link_used", signed_in.session.id, link_id=link.id)
        return signed_in

    return ceremonies.raised(
        await ceremonies.finish_verified(
            ctx, credential, "device", read=ceremonies.read_nothing, check=check, write=write
        )
    )


def require_passphrase(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest("Device addition token is required.", code="token_required")
    return value
