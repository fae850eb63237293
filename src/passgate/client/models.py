"""Typed results of the passkey API: credentials, pages of them, and verified token claims."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Credential:
    """A stored passkey, as `GET /credentials/{id}` describes it."""

    id: str
    name: str
    user_id: str
    public_key: str
    attestation_type: str
    aaguid: str
    created_at: str
    last_used_at: str | None
    transports: tuple[str, ...]
    backup_eligible: bool
    backup_state: bool
    is_mfa: bool

    @classmethod
    def from_json(cls, data: JSONObject) -> Credential:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or ""),
            user_id=str(data.get("user_id") or ""),
            public_key=str(data.get("public_key") or ""),
            attestation_type=str(data.get("attestation_type") or ""),
            aaguid=str(data.get("aaguid") or ""),
            created_at=str(data.get("created_at") or ""),
            last_used_at=data.get("last_used_at"),
            transports=tuple(str(item) for item in data.get("transports") or ()),
            backup_eligible=bool(data.get("backup_eligible")),
            backup_state=bool(data.get("backup_state")),
            is_mfa=bool(data.get("is_mfa")),
        )


@dataclass(frozen=True, slots=True)
class CredentialPage:
    """One page of `GET /credentials`: the items, the total (`X-Total-Count`) and the page numbers of
    the `Link` header's relations (`first`, `last`, `next`, `prev`)."""

    items: tuple[Credential, ...]
    total: int
    pages: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditLog:
    """One entry of `GET /audit_logs` (Hanko's audit_log): an event type such as
    `webauthn_authentication_final_failed`, who (`actor_user_id`, the backend's user id), from where,
    and what else Passgate recorded (`detail`, e.g. a flagged credential's reason)."""

    id: str
    type: str
    error: str | None
    meta_http_request_id: str
    meta_source_ip: str
    meta_user_agent: str
    actor_user_id: str | None
    created_at: str
    updated_at: str
    tenant_id: str
    transaction_id: str | None
    detail: JSONObject

    @classmethod
    def from_json(cls, data: JSONObject) -> AuditLog:
        detail = data.get("detail")
        return cls(
            id=str(data["id"]),
            type=str(data["type"]),
            error=None if data.get("error") is None else str(data["error"]),
            meta_http_request_id=str(data.get("meta_http_request_id") or ""),
            meta_source_ip=str(data.get("meta_source_ip") or ""),
            meta_user_agent=str(data.get("meta_user_agent") or ""),
            actor_user_id=None if data.get("actor_user_id") is None else str(data["actor_user_id"]),
            created_at=str(data.get("created_at") or ""),
            updated_at=str(data.get("updated_at") or ""),
            tenant_id=str(data.get("tenant_id") or ""),
            transaction_id=None if data.get("transaction_id") is None else str(data["transaction_id"]),
            detail=dict(detail) if isinstance(detail, dict) else {},
        )


@dataclass(frozen=True, slots=True)
class AuditLogPage:
    """One page of `GET /audit_logs`, newest first: as CredentialPage."""

    items: tuple[AuditLog, ...]
    total: int
    pages: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The claims of a verified finalize token."""

    subject: str  # the backend's user id
    audience: tuple[str, ...]  # the tenant's RP ID
    credential_id: str  # base64url
    issued_at: int
    expires_at: int
    auth_time: int  # when the passkey check happened
    transaction_id: str | None  # `trans`, for transaction tokens
    user_verified: bool | None  # `uv` (None: the issuer did not say, as Hanko's tokens)
    amr: tuple[str, ...]  # RFC 8176 methods
    issuer: str | None
    raw: JSONObject

    @classmethod
    def from_json(cls, claims: JSONObject) -> TokenClaims:
        audience = claims.get("aud")
        uv = claims.get("uv")
        return cls(
            subject=str(claims["sub"]),
            audience=tuple([audience] if isinstance(audience, str) else audience or ()),
            credential_id=str(claims.get("cred") or ""),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            auth_time=int(claims["auth_time"] if "auth_time" in claims else claims["iat"]),
            transaction_id=None if claims.get("trans") is None else str(claims["trans"]),
            user_verified=uv if isinstance(uv, bool) else None,
            amr=tuple(str(item) for item in claims.get("amr") or ()),
            issuer=None if claims.get("iss") is None else str(claims["iss"]),
            raw=dict(claims),
        )
