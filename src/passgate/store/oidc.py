"""OpenID Connect rows: clients registered by command, grants, codes, tokens and consents.

Codes and tokens are kept by their SHA-256 only; the store never sees a usable secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from passgate.store.models import oidc_clients, oidc_codes, oidc_consents, oidc_grants, oidc_tokens


@dataclass(frozen=True, slots=True)
class ClientRow:
    client_id: str
    tenant_id: str
    name: str
    secret_hash: str | None
    metadata_json: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: str
    user_id: str
    client_id: str
    session_id: str | None
    scope: str
    auth_time: float
    amr: str
    acr: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class CodeRow:
    code_hash: bytes
    grant_id: str
    client_id: str
    user_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    used_at: float | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    access_hash: bytes
    refresh_hash: bytes | None
    grant_id: str
    scope: str
    issued_at: float
    expires_at: float
    revoked_at: float | None
    refreshed_at: float | None


# ------------------------------------------------------------------------------------------- clients


def add_client(connection: Connection, row: ClientRow) -> None:
    connection.execute(insert(oidc_clients), [{name: getattr(row, name) for name in row.__slots__}])


def client(connection: Connection, client_id: str) -> ClientRow | None:
    found = connection.execute(select(oidc_clients).where(oidc_clients.c.client_id == client_id)).first()
    return ClientRow(**found._mapping) if found else None


def clients(connection: Connection) -> list[ClientRow]:
    rows = connection.execute(select(oidc_clients).order_by(oidc_clients.c.client_id))
    return [ClientRow(**row._mapping) for row in rows]


def set_client_secret(connection: Connection, client_id: str, secret_hash: str) -> bool:
    result = connection.execute(
        update(oidc_clients).where(oidc_clients.c.client_id == client_id).values(secret_hash=secret_hash)
    )
    return result.rowcount > 0


def remove_client(connection: Connection, client_id: str) -> bool:
    """Delete a client with every grant (and so token), code and consent made for it."""
    connection.execute(delete(oidc_codes).where(oidc_codes.c.client_id == client_id))
    connection.execute(delete(oidc_tokens).where(oidc_tokens.c.grant_id.in_(_grants_of_client(client_id))))
    connection.execute(delete(oidc_grants).where(oidc_grants.c.client_id == client_id))
    connection.execute(delete(oidc_consents).where(oidc_consents.c.client_id == client_id))
    result = connection.execute(delete(oidc_clients).where(oidc_clients.c.client_id == client_id))
    return result.rowcount > 0


def _grants_of_client(client_id: str) -> Any:
    return select(oidc_grants.c.id).where(oidc_grants.c.client_id == client_id).scalar_subquery()


# -------------------------------------------------------------------------------------------- grants


def add_grant(connection: Connection, row: GrantRow) -> None:
    connection.execute(insert(oidc_grants), [{name: getattr(row, name) for name in row.__slots__}])


def grant(connection: Connection, grant_id: str) -> GrantRow | None:
    found = connection.execute(select(oidc_grants).where(oidc_grants.c.id == grant_id)).first()
    return GrantRow(**found._mapping) if found else None


def extend_grant(connection: Connection, grant_id: str, expires_at: float) -> None:
    connection.execute(update(oidc_grants).where(oidc_grants.c.id == grant_id).values(expires_at=expires_at))


def remove_grants(connection: Connection, grant_ids: list[str]) -> int:
    """Revoke whole grants: their tokens go with them (and stay unusable: nothing matches a hash)."""
    if not grant_ids:
        return 0
    connection.execute(delete(oidc_tokens).where(oidc_tokens.c.grant_id.in_(grant_ids)))
    result = connection.execute(delete(oidc_grants).where(oidc_grants.c.id.in_(grant_ids)))
    return result.rowcount


def grants_of_session(connection: Connection, session_id: str) -> list[str]:
    rows = connection.execute(select(oidc_grants.c.id).where(oidc_grants.c.session_id == session_id))
    return [row.id for row in rows]


def grants_of_user_client(connection: Connection, user_id: str, client_id: str) -> list[str]:
    rows = connection.execute(
        select(oidc_grants.c.id).where(oidc_grants.c.user_id == user_id, oidc_grants.c.client_id == client_id)
    )
    return [row.id for row in rows]


# --------------------------------------------------------------------------------------------- codes


def add_code(connection: Connection, row: CodeRow) -> None:
    connection.execute(insert(oidc_codes), [{name: getattr(row, name) for name in row.__slots__}])


def use_code(connection: Connection, code_hash: bytes, at: float) -> tuple[CodeRow | None, bool]:
    """(the code, whether this call used it): marking it used is atomic, so two redemptions racing
    each other cannot both win."""
    found = connection.execute(select(oidc_codes).where(oidc_codes.c.code_hash == code_hash)).first()
    if found is None:
        return None, False
    result = connection.execute(
        update(oidc_codes)
        .where(oidc_codes.c.code_hash == code_hash, oidc_codes.c.used_at.is_(None))
        .values(used_at=at)
    )
    return CodeRow(**found._mapping), result.rowcount == 1


# -------------------------------------------------------------------------------------------- tokens


def add_token(connection: Connection, row: TokenRow) -> None:
    connection.execute(insert(oidc_tokens), [{name: getattr(row, name) for name in row.__slots__}])


def token_by_access(connection: Connection, access_hash: bytes) -> TokenRow | None:
    found = connection.execute(select(oidc_tokens).where(oidc_tokens.c.access_hash == access_hash)).first()
    return TokenRow(**found._mapping) if found else None


def token_by_refresh(connection: Connection, refresh_hash: bytes) -> TokenRow | None:
    found = connection.execute(select(oidc_tokens).where(oidc_tokens.c.refresh_hash == refresh_hash)).first()
    return TokenRow(**found._mapping) if found else None


def mark_refreshed(connection: Connection, access_hash: bytes, at: float) -> bool:
    """Use a refresh token (once): False when it was already used."""
    result = connection.execute(
        update(oidc_tokens)
        .where(oidc_tokens.c.access_hash == access_hash, oidc_tokens.c.refreshed_at.is_(None))
        .values(refreshed_at=at)
    )
    return result.rowcount == 1


def revoke_token(connection: Connection, access_hash: bytes, at: float) -> None:
    connection.execute(
        update(oidc_tokens).where(oidc_tokens.c.access_hash == access_hash).values(revoked_at=at)
    )


# ------------------------------------------------------------------------------------------ consents


def consent(connection: Connection, user_id: str, client_id: str) -> str | None:
    found = connection.execute(
        select(oidc_consents.c.scope).where(
            oidc_consents.c.user_id == user_id, oidc_consents.c.client_id == client_id
        )
    ).first()
    return found.scope if found else None


def save_consent(connection: Connection, user_id: str, client_id: str, scope: str, at: float) -> None:
    connection.execute(
        delete(oidc_consents).where(
            oidc_consents.c.user_id == user_id, oidc_consents.c.client_id == client_id
        )
    )
    connection.execute(
        insert(oidc_consents),
        [{"user_id": user_id, "client_id": client_id, "scope": scope, "granted_at": at, "last_used_at": at}],
    )


def consents_of(connection: Connection, user_id: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(oidc_consents).where(oidc_consents.c.user_id == user_id).order_by(oidc_consents.c.granted_at)
    )
    return [dict(row._mapping) for row in rows]


def remove_consent(connection: Connection, user_id: str, client_id: str) -> bool:
    result = connection.execute(
        delete(oidc_consents).where(
            oidc_consents.c.user_id == user_id, oidc_consents.c.client_id == client_id
        )
    )
    return result.rowcount > 0


def sweep(connection: Connection, at: float) -> int:
    """Expired codes and grants (with their tokens)."""
    removed = connection.execute(delete(oidc_codes).where(oidc_codes.c.expires_at <= at)).rowcount
    expired = select(oidc_grants.c.id).where(oidc_grants.c.expires_at <= at).scalar_subquery()
    connection.execute(delete(oidc_tokens).where(oidc_tokens.c.grant_id.in_(expired)))
    return removed + connection.execute(delete(oidc_grants).where(oidc_grants.c.expires_at <= at)).rowcount
