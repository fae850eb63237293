"""Plain records the store returns: one frozen dataclass per table, built from a row's mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    tenant_id: str
    user_name: str
    display_name: str
    user_handle: bytes
    disabled: bool
    created_at: float
    last_seen_at: float | None
    visits: int
    user_key: str = ""  # unique per tenant: the canonical form of user_name (services/names.py)
    email: str | None = None  # set by an administrator; the only source of `Remote-Email`


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    credential_id: bytes
    tenant_id: str
    user_id: str
    public_key: bytes
    algorithm: int
    sign_count: int
    transports: str
    aaguid: str
    backup_eligible: bool
    backup_state: bool
    uv_initialized: bool
    attestation_format: str
    rp_id: str
    name: str
    created_at: float
    last_used_at: float | None
    last_verified_at: float | None
    flagged_at: float | None
    flag_reason: str | None
    is_mfa: bool = False  # a passkey-API second factor (`mfa/registration`), for an MFA login only


@dataclass(frozen=True, slots=True)
class ChallengeRecord:
    challenge: bytes
    purpose: str
    tenant_id: str
    user_id: str | None
    session_id: str | None
    state: dict[str, Any]
    expires_at: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    tenant_id: str
    user_id: str
    credential_id: bytes | None
    created_at: float
    last_seen_at: float
    auth_time: float
    user_verified: bool
    amr: str
    user_agent: str
    ip: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class LinkRecord:
    id: str
    secret_hash: bytes
    tenant_id: str
    user_id: str
    created_by: str
    created_at: float
    expires_at: float
    session_id: str | None = None
