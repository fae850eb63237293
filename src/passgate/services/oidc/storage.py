"""What the protocol stores, over one unit of work: codes, grants and tokens by their SHA-256 only.

A grant is one authorization (one code) and the family of tokens it leads to. A replayed code or a
reused refresh token revokes its whole grant (RFC 6749 §4.1.2 and §10.4, RFC 9700 §4.14.2; OWASP ASVS
5.0 V10.4.2 and V10.4.5). A grant never outlives `PASSGATE_OIDC_REFRESH_TOKEN_TTL` from its code's
redemption, however often it is refreshed (V10.4.8).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from sqlalchemy import Connection

from passgate.oidc.clients import Client
from passgate.oidc.server import Authorized, IssuedCode, IssuedToken, Lifetimes
from passgate.services.context import Context
from passgate.services.oidc import registry
from passgate.store import audit, users
from passgate.store import oidc as rows
from passgate.store.database import now

log = logging.getLogger("passgate.oidc")
EndSession = Callable[[dict[str, Any] | None, Client | None], None]


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class Store:
    """`passgate.oidc.server.Storage` over a connection."""

    def __init__(self, connection: Connection, ctx: Context, end_session: EndSession | None = None):
        self.connection = connection
        self.ctx = ctx
        self.lifetimes: Lifetimes = registry.state(ctx).lifetimes
        self._end_session = end_session

    def client(self, client_id: str) -> Client | None:
        return registry.find(self.connection, self.ctx, client_id)

    # codes
    def save_code(self, code: str, request: OAuth2Request, user: Authorized) -> None:
        at = now()
        grant_id = secrets.token_urlsafe(24)
        client: Client = request.client
        rows.add_grant(
            self.connection,
            rows.GrantRow(
                id=grant_id,
                user_id=user.user_id,
                client_id=client.client_id,
                session_id=user.session_id,
                scope=request.scope or "",
                auth_time=user.auth_time,
                amr=user.amr,
                acr=user.acr,
                created_at=at,
                expires_at=at + self.lifetimes.code,  # until redeemed
            ),
        )
        data = request.payload.data
        rows.add_code(
            self.connection,
            rows.CodeRow(
                code_hash=digest(code),
                grant_id=grant_id,
                client_id=client.client_id,
                user_id=user.user_id,
                redirect_uri=request.payload.redirect_uri or "",
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                expires_at=at + self.lifetimes.code,
                used_at=None,
            ),
        )

    def use_code(self, code: str, client: Client) -> IssuedCode | None:
        at = now()
        row, used_now = rows.use_code(self.connection, digest(code), at)
        if row is None:
            return None
        if not used_now:
            self._revoke_grant(row.grant_id, row.user_id, "oidc_code_replayed", client.client_id)
            return None
        if row.expires_at <= at or row.client_id != client.client_id:
            return None  # used up all the same: a stolen code is worth nothing to its thief afterwards
        grant = rows.grant(self.connection, row.grant_id)
        user = users.get(self.connection, row.user_id)
        if grant is None or user is None:
            return None
        return IssuedCode(
            grant_id=grant.id,
            client_id=row.client_id,
            redirect_uri=row.redirect_uri,
            scope=grant.scope,
            nonce=row.nonce,
            code_challenge=row.code_challenge,
            code_challenge_method=row.code_challenge_method,
            user=_authorized(user, grant),
        )

    # tokens
    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        at = now()
        if request.authorization_code is not None:
            grant_id = request.authorization_code.grant_id
            rows.extend_grant(self.connection, grant_id, at + self.lifetimes.refresh)
        else:
            grant_id = request.refresh_token.grant_id
        refresh = token.get("refresh_token")
        rows.add_token(
            self.connection,
            rows.TokenRow(
                access_hash=digest(token["access_token"]),
                refresh_hash=digest(refresh) if refresh else None,
                grant_id=grant_id,
                scope=str(token.get("scope") or ""),
                issued_at=at,
                expires_at=at + int(token.get("expires_in") or self.lifetimes.access_token),
                revoked_at=None,
                refreshed_at=None,
            ),
        )

    def use_refresh_token(self, refresh_token: str, client: Client) -> IssuedToken | None:
        at = now()
        row = rows.token_by_refresh(self.connection, digest(refresh_token))
        grant = rows.grant(self.connection, row.grant_id) if row else None
        if row is None or grant is None or grant.client_id != client.client_id:
            return None
        if not rows.mark_refreshed(self.connection, row.access_hash, at):
            self._revoke_grant(grant.id, grant.user_id, "oidc_refresh_token_reused", client.client_id)
            return None
        user = users.get(self.connection, grant.user_id)
        if row.revoked_at is not None or grant.expires_at <= at or user is None:
            return None
        return IssuedToken(
            key=row.access_hash,
            grant_id=grant.id,
            client_id=grant.client_id,
            scope=grant.scope,  # the original scope, kept on every refresh
            issued_at=row.issued_at,
            expires_at=grant.expires_at,
            revoked=False,
            user=_authorized(user, grant),
            is_refresh=True,
        )

    def find_token(self, token: str, hint: str | None) -> IssuedToken | None:
        key = digest(token)
        order = (
            ("refresh_token", "access_token")
            if hint == "refresh_token"
            else ("access_token", "refresh_token")
        )
        for kind in order:
            row = (rows.token_by_access if kind == "access_token" else rows.token_by_refresh)(
                self.connection, key
            )
            if row is not None:
                return self._issued(row, refresh=kind == "refresh_token")
        return None

    def _issued(self, row: rows.TokenRow, *, refresh: bool) -> IssuedToken | None:
        grant = rows.grant(self.connection, row.grant_id)
        user = users.get(self.connection, grant.user_id) if grant else None
        if grant is None or user is None:
            return None
        spent = row.revoked_at is not None or (refresh and row.refreshed_at is not None)
        return IssuedToken(
            key=row.access_hash,
            grant_id=grant.id,
            client_id=grant.client_id,
            scope=grant.scope if refresh else row.scope,
            issued_at=row.issued_at,
            expires_at=grant.expires_at if refresh else row.expires_at,
            revoked=spent or user.disabled,
            user=_authorized(user, grant),
            is_refresh=refresh,
        )

    def revoke(self, token: IssuedToken) -> None:
        """RFC 7009 §2.1: revoking a refresh token revokes its grant; an access token, itself."""
        if token.is_refresh:
            self._revoke_grant(token.grant_id, token.user.user_id, "oidc_grant_revoked", token.client_id)
        else:
            rows.revoke_token(self.connection, token.key, now())

    def still_active(self, user: Authorized) -> Authorized | None:
        stored = users.get(self.connection, user.user_id)
        if stored is None or stored.disabled:
            return None
        return Authorized(
            user_id=stored.id,
            user_name=stored.user_name,
            display_name=stored.display_name,
            email=stored.email,
            session_id=user.session_id,
            auth_time=user.auth_time,
            amr=user.amr,
            acr=user.acr,
        )

    def end_session(self, claims: dict[str, Any] | None, client: Client | None) -> None:
        if self._end_session is not None:
            self._end_session(claims, client)

    def _revoke_grant(self, grant_id: str, user_id: str, kind: str, client_id: str) -> None:
        rows.remove_grants(self.connection, [grant_id])
        audit.record(
            self.connection,
            tenant_id=self.ctx.tenant_id,
            user_id=user_id,
            kind=kind,
            at=now(),
            client=client_id,
        )
        log.warning("%s: grant of client %s revoked", kind, client_id)


def _authorized(user: Any, grant: rows.GrantRow) -> Authorized:
    return Authorized(
        user_id=user.id,
        user_name=user.user_name,
        display_name=user.display_name,
        email=user.email,
        session_id=grant.session_id,
        auth_time=grant.auth_time,
        amr=grant.amr,
        acr=grant.acr,
    )
