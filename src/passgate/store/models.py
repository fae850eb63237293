"""Tables. Times are UTC epoch seconds (float); ids are strings; WebAuthn values are raw bytes.

The store knows nothing of WebAuthn or HTTP: it keeps bytes, numbers, strings and times.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BUILTIN_TENANT = "00000000-0000-0000-0000-000000000000"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)


class User(Base):
    """`user_name` is shown as typed; `user_key` (its canonical form, services/names.py) is what is
    unique per tenant. `email` is only ever an address an administrator set (`Remote-Email`)."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_name", name="uq_users_tenant_name"),
        Index("uq_users_tenant_key", "tenant_id", "user_key", unique=True),
        Index("ix_users_tenant_created", "tenant_id", "created_at"),  # the newest accounts (decoys)
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(String(200))
    user_key: Mapped[str] = mapped_column(String(300), server_default="")
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    display_name: Mapped[str] = mapped_column(String(200))
    user_handle: Mapped[bytes] = mapped_column(LargeBinary(64), unique=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    visits: Mapped[int] = mapped_column(Integer, default=0)


class UserGroup(Base):
    """A user's membership of a named group (forward-auth rules, `Remote-Groups`)."""

    __tablename__ = "user_groups"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Credential(Base):
    __tablename__ = "credentials"
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    algorithm: Mapped[int] = mapped_column(Integer)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    transports: Mapped[str] = mapped_column(String(200), default="")
    aaguid: Mapped[str] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(Boolean)
    backup_state: Mapped[bool] = mapped_column(Boolean)
    uv_initialized: Mapped[bool] = mapped_column(Boolean)
    attestation_format: Mapped[str] = mapped_column(String(40))
    rp_id: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_verified_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    flagged_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    flag_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The passkey API's second-factor credentials (`mfa/registration`): usable for an MFA login only.
    is_mfa: Mapped[bool] = mapped_column(Boolean, server_default=false())


class Challenge(Base):
    __tablename__ = "challenges"
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))
    tenant_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[dict[str, object]] = mapped_column(JSON)
    expires_at: Mapped[float] = mapped_column(Float)  # no index: migration 0009


class Session(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes | None] = mapped_column(LargeBinary(1023), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    auth_time: Mapped[float] = mapped_column(Float)
    user_verified: Mapped[bool] = mapped_column(Boolean)
    amr: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    expires_at: Mapped[float] = mapped_column(Float)


class DeviceLink(Base):
    __tablename__ = "device_links"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the session that made it


class AuditEvent(Base):
    """`actor` and `source_ip` are the passkey API's (Hanko's `actor_user_id`, `meta_source_ip`): the
    backend's own user id, which may name no user yet, and the caller's address; both searchable."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_user_at", "user_id", "at"),
        Index("ix_audit_events_tenant_at", "tenant_id", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    tenant_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(60))
    detail: Mapped[str] = mapped_column(Text, default="")
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the acting session
    actor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Revocation(Base):
    """The revocation log: sessions ended (or, with no session id, every session of a user), read by
    other processes to drop what they remember (services/revocation.py)."""

    __tablename__ = "revocations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    user_id: Mapped[str] = mapped_column(String(36))
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PasskeyTenant(Base):
    """A tenant of the passkey API for other backends: its own relying party and ceremony policy.
    The first-party tenant has no row here, so the API never reaches it."""

    __tablename__ = "passkey_tenants"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    rp_id: Mapped[str] = mapped_column(String(253))
    rp_name: Mapped[str] = mapped_column(String(200))
    origins: Mapped[list[str]] = mapped_column(JSON)
    user_verification: Mapped[str] = mapped_column(String(20))
    timeout_ms: Mapped[int] = mapped_column(Integer)


class ApiKey(Base):
    """A tenant's API key: only its SHA-256 is stored (the key holds at least 32 random bytes)."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[float] = mapped_column(Float)


class TokenKey(Base):
    """A tenant's token-signing key (RS256): the private key sealed with the server's secret key, the
    public JWK in the clear. The newest signs; older ones stay in the JWKS until their tokens expired."""

    __tablename__ = "token_keys"
    kid: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


class PasskeyTransaction(Base):
    """A transaction a backend asked a user to confirm; its id is unique per tenant (reuse is refused)."""

    __tablename__ = "passkey_transactions"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


tenants = cast(Table, Tenant.__table__)
users = cast(Table, User.__table__)
credentials = cast(Table, Credential.__table__)
challenges = cast(Table, Challenge.__table__)
sessions = cast(Table, Session.__table__)
device_links = cast(Table, DeviceLink.__table__)
audit_events = cast(Table, AuditEvent.__table__)
user_groups = cast(Table, UserGroup.__table__)
revocations = cast(Table, Revocation.__table__)


class OidcClient(Base):
    """An OpenID Connect client registered by command (`passgate client add`); clients declared in the
    configuration file are not stored. `secret_hash` is `sha256:<hex>` of a generated secret."""

    __tablename__ = "oidc_clients"
    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(100), nullable=True)
    metadata_json: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


class OidcGrant(Base):
    """One authorization of a client by a user (from one code): the family its tokens belong to."""

    __tablename__ = "oidc_grants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(100), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    scope: Mapped[str] = mapped_column(String(1000))
    auth_time: Mapped[float] = mapped_column(Float)
    amr: Mapped[str] = mapped_column(String(100))
    acr: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # absolute: refresh never outlives it


class OidcCode(Base):
    """An authorization code by its SHA-256; kept after use until it expires, to detect a replay."""

    __tablename__ = "oidc_codes"
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(String(500), nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class OidcToken(Base):
    """An access token and (optionally) its refresh token, by their SHA-256 hashes."""

    __tablename__ = "oidc_tokens"
    access_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    refresh_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True, unique=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("oidc_grants.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(1000))
    issued_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    refreshed_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # its refresh token was used


class OidcConsent(Base):
    """What a user allowed a client to see, remembered until they revoke it."""

    __tablename__ = "oidc_consents"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    scope: Mapped[str] = mapped_column(String(1000))
    granted_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float] = mapped_column(Float)


oidc_clients = cast(Table, OidcClient.__table__)
oidc_grants = cast(Table, OidcGrant.__table__)
oidc_codes = cast(Table, OidcCode.__table__)
oidc_tokens = cast(Table, OidcToken.__table__)
oidc_consents = cast(Table, OidcConsent.__table__)
passkey_tenants = cast(Table, PasskeyTenant.__table__)
api_keys = cast(Table, ApiKey.__table__)
token_keys = cast(Table, TokenKey.__table__)
passkey_transactions = cast(Table, PasskeyTransaction.__table__)
