"""Tables. Times are UTC epoch seconds (float); ids are strings; WebAuthn values are raw bytes.

The store knows nothing of WebAuthn or HTTP: it keeps bytes, numbers, strings and times. The tables are
SQLAlchemy Core `Table`s (the store runs Core statements only): no ORM is imported, which saves a
tenth of a second and several MB per process. Alembic's `env.py` compares against `metadata`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
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
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeEngine

ColumnType = TypeEngine[Any] | type[TypeEngine[Any]]

BUILTIN_TENANT = "00000000-0000-0000-0000-000000000000"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


def _required(name: str, type_: ColumnType, *items: SchemaItem, **options: Any) -> Column[Any]:
    """A NOT NULL column (a Core column is nullable unless it is part of the primary key)."""
    return Column(name, type_, *items, nullable=False, **options)


def _optional(name: str, type_: ColumnType, *items: SchemaItem, **options: Any) -> Column[Any]:
    return Column(name, type_, *items, nullable=True, **options)


def _owner(table: str, column: str = "id") -> ForeignKey:
    return ForeignKey(f"{table}.{column}", ondelete="CASCADE")


tenants = Table(
    "tenants",
    metadata,
    _required("id", String(36), primary_key=True),
    _required("name", String(200)),
    _required("created_at", Float),
)

# `user_name` is shown as typed; `user_key` (its canonical form, services/names.py) is what is unique
# per tenant. `email` is only ever an address an administrator set (`Remote-Email`).
users = Table(
    "users",
    metadata,
    _required("id", String(36), primary_key=True),
    _required("tenant_id", String(36), _owner("tenants")),
    _required("user_name", String(200)),
    _required("user_key", String(300), server_default=""),
    _optional("email", String(320)),
    _required("display_name", String(200)),
    _required("user_handle", LargeBinary(64), unique=True),
    _required("disabled", Boolean, default=False),
    _required("created_at", Float),
    _optional("last_seen_at", Float),
    _required("visits", Integer, default=0),
    UniqueConstraint("tenant_id", "user_name", name="uq_users_tenant_name"),
    Index("uq_users_tenant_key", "tenant_id", "user_key", unique=True),
    Index("ix_users_tenant_created", "tenant_id", "created_at"),  # the newest accounts (decoys)
)

# A user's membership of a named group (forward-auth rules, `Remote-Groups`).
user_groups = Table(
    "user_groups",
    metadata,
    _required("user_id", String(36), _owner("users"), primary_key=True),
    _required("group_name", String(64), primary_key=True, index=True),
)

credentials = Table(
    "credentials",
    metadata,
    _required("credential_id", LargeBinary(1023), primary_key=True),
    _required("tenant_id", String(36), _owner("tenants")),
    _required("user_id", String(36), _owner("users"), index=True),
    _required("public_key", LargeBinary),
    _required("algorithm", Integer),
    _required("sign_count", Integer, default=0),
    _required("transports", String(200), default=""),
    _required("aaguid", String(36)),
    _required("backup_eligible", Boolean),
    _required("backup_state", Boolean),
    _required("uv_initialized", Boolean),
    _required("attestation_format", String(40)),
    _required("rp_id", String(253)),
    _required("name", String(200), default=""),
    _required("created_at", Float),
    _optional("last_used_at", Float),
    _optional("last_verified_at", Float),
    _optional("flagged_at", Float),
    _optional("flag_reason", String(200)),
    # The passkey API's second-factor credentials (`mfa/registration`): usable for an MFA login only.
    _required("is_mfa", Boolean, server_default=false()),
)

challenges = Table(
    "challenges",
    metadata,
    _required("challenge", LargeBinary(64), primary_key=True),
    _required("purpose", String(20)),
    _required("tenant_id", String(36)),
    _optional("user_id", String(36)),
    _optional("session_id", String(64)),
    _required("state", JSON),
    _required("expires_at", Float),  # no index: migration 0009
    sqlite_with_rowid=False,  # one B-tree: migration 0012
)

sessions = Table(
    "sessions",
    metadata,
    _required("id", String(64), primary_key=True),
    _required("tenant_id", String(36)),
    _required("user_id", String(36), _owner("users"), index=True),
    _optional("credential_id", LargeBinary(1023)),
    _required("created_at", Float),
    _required("last_seen_at", Float),
    _required("auth_time", Float),
    _required("user_verified", Boolean),
    _required("amr", String(100)),
    _required("user_agent", String(400), default=""),
    _required("ip", String(64), default=""),
    _required("expires_at", Float),
)

device_links = Table(
    "device_links",
    metadata,
    _required("id", String(36), primary_key=True),
    _required("secret_hash", LargeBinary(32), unique=True),
    _required("tenant_id", String(36)),
    _required("user_id", String(36), _owner("users"), index=True),
    _required("created_by", String(20)),
    _required("created_at", Float),
    _required("expires_at", Float),
    _optional("session_id", String(64)),  # the session that made it
)

audit_events = Table(
    "audit_events",
    metadata,
    _required("id", Integer, primary_key=True, autoincrement=True),
    _required("at", Float),
    _required("tenant_id", String(36)),
    _optional("user_id", String(36)),
    _required("kind", String(60)),
    _required("detail", Text, default=""),
    _optional("session_id", String(64)),  # the acting session
    # The passkey API's (Hanko's `actor_user_id`, `meta_source_ip`): the backend's own user id, which
    # may name no user yet, and the caller's address; both searchable.
    _optional("actor", String(200)),
    _optional("source_ip", String(64)),
    Index("ix_audit_events_user_at", "user_id", "at"),
    Index("ix_audit_events_tenant_at", "tenant_id", "at"),
)

# The revocation log: sessions ended (or, with no session id, every session of a user), read by other
# processes to drop what they remember (services/revocation.py).
revocations = Table(
    "revocations",
    metadata,
    _required("id", Integer, primary_key=True, autoincrement=True),
    _required("at", Float, index=True),
    _required("user_id", String(36)),
    _optional("session_id", String(64)),
)

# A tenant of the passkey API for other backends: its own relying party and ceremony policy. The
# first-party tenant has no row here, so the API never reaches it.
passkey_tenants = Table(
    "passkey_tenants",
    metadata,
    _required("tenant_id", String(36), _owner("tenants"), primary_key=True),
    _required("rp_id", String(253)),
    _required("rp_name", String(200)),
    _required("origins", JSON),
    _required("user_verification", String(20)),
    _required("timeout_ms", Integer),
    _required("resident_key", String(20), server_default="required"),  # migration 0010
    _required("attestation", String(20), server_default="none"),
)

# A tenant's API key: only its SHA-256 is stored (the key holds at least 32 random bytes).
api_keys = Table(
    "api_keys",
    metadata,
    _required("id", String(36), primary_key=True),
    _required("tenant_id", String(36), _owner("tenants"), index=True),
    _required("name", String(200)),
    _required("secret_hash", LargeBinary(32), unique=True),
    _required("created_at", Float),
)

# A tenant's token-signing key (RS256): the private key sealed with the server's secret key, the public
# JWK in the clear. The newest signs; older ones stay in the JWKS until their tokens expired.
token_keys = Table(
    "token_keys",
    metadata,
    _required("kid", String(36), primary_key=True),
    _required("tenant_id", String(36), _owner("tenants"), index=True),
    _required("sealed_private_key", LargeBinary),
    _required("public_jwk", JSON),
    _required("created_at", Float),
)

# A transaction a backend asked a user to confirm; its id is unique per tenant (reuse is refused).
passkey_transactions = Table(
    "passkey_transactions",
    metadata,
    _required("tenant_id", String(36), _owner("tenants"), primary_key=True),
    _required("transaction_id", String(128), primary_key=True),
    _required("user_id", String(36), _owner("users"), index=True),
    _required("data", Text),
    _required("created_at", Float),
    _optional("finished_at", Float),
)

# An OpenID Connect client registered by command (`passgate client add`); clients declared in the
# configuration file are not stored. `secret_hash` is `sha256:<hex>` of a generated secret.
oidc_clients = Table(
    "oidc_clients",
    metadata,
    _required("client_id", String(100), primary_key=True),
    _required("tenant_id", String(36)),
    _required("name", String(200)),
    _optional("secret_hash", String(100)),
    _required("metadata_json", JSON),
    _required("created_at", Float),
)

# One authorization of a client by a user (from one code): the family its tokens belong to.
oidc_grants = Table(
    "oidc_grants",
    metadata,
    _required("id", String(64), primary_key=True),
    _required("user_id", String(36), _owner("users"), index=True),
    _required("client_id", String(100), index=True),
    _optional("session_id", String(64), index=True),
    _required("scope", String(1000)),
    _required("auth_time", Float),
    _required("amr", String(100)),
    _required("acr", String(100)),
    _required("created_at", Float),
    _required("expires_at", Float, index=True),  # absolute: refresh never outlives it
)

# An authorization code by its SHA-256; kept after use until it expires, to detect a replay.
oidc_codes = Table(
    "oidc_codes",
    metadata,
    _required("code_hash", LargeBinary(32), primary_key=True),
    _required("grant_id", String(64)),
    _required("client_id", String(100)),
    _required("user_id", String(36), _owner("users"), index=True),
    _required("redirect_uri", Text),
    _optional("nonce", String(500)),
    _optional("code_challenge", String(128)),
    _optional("code_challenge_method", String(10)),
    _required("expires_at", Float, index=True),
    _optional("used_at", Float),
)

# An access token and (optionally) its refresh token, by their SHA-256 hashes.
oidc_tokens = Table(
    "oidc_tokens",
    metadata,
    _required("access_hash", LargeBinary(32), primary_key=True),
    _optional("refresh_hash", LargeBinary(32), unique=True),
    _required("grant_id", String(64), _owner("oidc_grants"), index=True),
    _required("scope", String(1000)),
    _required("issued_at", Float),
    _required("expires_at", Float),
    _optional("revoked_at", Float),
    _optional("refreshed_at", Float),  # its refresh token was used
)

# What a user allowed a client to see, remembered until they revoke it.
oidc_consents = Table(
    "oidc_consents",
    metadata,
    _required("user_id", String(36), _owner("users"), primary_key=True),
    _required("client_id", String(100), primary_key=True),
    _required("scope", String(1000)),
    _required("granted_at", Float),
    _required("last_used_at", Float),
)
