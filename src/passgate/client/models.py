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
