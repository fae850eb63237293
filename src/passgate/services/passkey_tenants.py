"""Passkey-API tenants: their relying party, API keys and token-signing keys; who may call; tokens.

A tenant is an isolated relying party for one backend: its own RP ID, origins, user-verification
policy, timeout, users (named by the backend's own ids), credentials, API keys and signing keys.

API keys hold 64 random bytes (shown once, as Hanko formats them) and only their SHA-256 is stored: a
key of that entropy needs no slow hash (OWASP ASVS 5.0 V11.4.2 is about low-entropy secrets).
Token-signing keys are RSA (RS256, RFC 7518 §3.3), one set per tenant; the private key is sealed
with AES-GCM under a key derived (HKDF, RFC 5869) from the server's first secret key, so a copy of
the database alone cannot forge tokens. The newest key signs; older keys stay in the JWKS until
every token they signed has expired, and are deleted at the next rotation after that.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import Connection

from passgate.ceremony.policy import RelyingParty, UserVerification
from passgate.errors import (
    ApiKeyInvalid,
    BadRequest,
    ConfigError,
    NotFound,
    TenantIdInvalid,
    TenantNotFound,
)
from passgate.memo import Memo
from passgate.services.context import Context
from passgate.services.sessions import amr_for
from passgate.store import audit
from passgate.store import tenants as store
from passgate.store.database import now
from passgate.store.tenants import TenantRecord, TokenKeyRecord

API_KEY_BYTES = 64
TOKEN_TTL = 300  # seconds, as Hanko's tokens
JWKS_MAX_AGE = 600  # seconds a client may cache the JWKS (Cache-Control)
CLOCK_SKEW = 60
KEY_BITS = (2048, 3072, 4096)
DEFAULT_KEY_BITS = 2048
_SEALING_INFO = b"passgate passkey-api token-signing key v1"


# --------------------------------------------------------------------------- who may call


def tenant_id_of(text: str) -> str:
    """The tenant id in its canonical form; TenantIdInvalid unless it is a UUID."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise TenantIdInvalid() from None


def api_key_hash(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def open_tenant(
    connection: Connection, tenant_id: str, api_key: str | None, *, key_required: bool
) -> TenantRecord:
    """The tenant named in the path, after its API key when the call needs one (leading and trailing
    white space ignored, as Hanko does). A tenant without a passkey-API row (the first-party one) is
    not found."""
    tenant = store.get(connection, tenant_id)
    if tenant is None:
        raise TenantNotFound()
    if key_required:
        require_key(connection, tenant, api_key)
    return tenant


def open_tenant_to_sign(
    connection: Connection, tenant_id: str, api_key: str | None, *, key_required: bool
) -> tuple[TenantRecord, TokenKeyRecord | None]:
    """`open_tenant`, and the tenant's signing key (not opened yet: `opened`), read in one statement."""
    key = (api_key or "").strip() if key_required else ""
    found = store.tenant_to_sign(connection, tenant_id, api_key_hash(key) if key else b"")
    if found is None:
        raise TenantNotFound()
    tenant, key_matches, signing = found
    if key_required and not (key and key_matches):
        raise ApiKeyInvalid()
    return tenant, signing


def require_key(connection: Connection, tenant: TenantRecord, api_key: str | None) -> None:
    key = (api_key or "").strip()
    if not key or not store.api_key_matches(connection, tenant.tenant_id, api_key_hash(key)):
        raise ApiKeyInvalid()


def relying_party(ctx: Context, tenant: TenantRecord) -> RelyingParty:
    uv: UserVerification = tenant.user_verification  # type: ignore[assignment]
    return RelyingParty(
        rp_id=tenant.rp_id,
        rp_name=tenant.rp_name,
        origins=tuple(tenant.origins),
        user_verification=uv,
        algorithms=ctx.rp.algorithms,
        timeout_ms=tenant.timeout_ms,
    )


def tenant_context(ctx: Context, tenant: TenantRecord) -> Context:
    """The services' context as this tenant: its relying party, its id on every row and challenge."""
    return replace(ctx, rp=relying_party(ctx, tenant), tenant_id=tenant.tenant_id)


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class Proof:
    """What a finished ceremony proves, for the token."""

    user_id: str  # the backend's id
    credential_id: str  # base64url
    user_verified: bool
    backup_eligible: bool
    transaction_id: str | None = None


_loaded: Memo[str, RSAKey] = Memo(256)  # opened signing keys by kid (one per tenant in use)
_loaded_lock = threading.Lock()


def issue_token(ctx: Context, tenant: TenantRecord, key: TokenKeyRecord, proof: Proof) -> str:
    """A JWT as Hanko's (`sub`, `aud`, `cred`, `iat`, `exp`, `trans`), plus `iss`, `auth_time`, `amr`
    (RFC 8176) and `uv`, so that a backend can apply a step-up rule (a fresh check, with UV)."""
    issued = int(time.time())
    claims: dict[str, Any] = {
        "iss": f"{ctx.settings.public_url}/passkeys/{tenant.tenant_id}",
        "sub": proof.user_id,
        "aud": [tenant.rp_id],
        "cred": proof.credential_id,
        "iat": issued,
        "exp": issued + TOKEN_TTL,
        "auth_time": issued,
        "amr": amr_for(user_verified=proof.user_verified, backup_eligible=proof.backup_eligible).split(),
        "uv": proof.user_verified,
    }
    if proof.transaction_id is not None:
        claims["trans"] = proof.transaction_id
    header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, _private_key(ctx, key))


def opened(ctx: Context, key: TokenKeyRecord | None) -> TokenKeyRecord | None:
    """`key`, once a configured secret key opened it (ConfigError when none does): a finalize calls it in
    its write, so a secret key removed from the configuration refuses the ceremony (rolled back) before
    a passkey is stored or a counter moves, instead of failing after the commit."""
    if key is not None:
        _private_key(ctx, key)
    return key


def _private_key(ctx: Context, key: TokenKeyRecord) -> RSAKey:
    loaded = _loaded.get(key.kid)
    if loaded is None:
        pem = _unseal(ctx, key)
        loaded = RSAKey.import_key(pem, parameters={"kid": key.kid, "use": "sig", "alg": "RS256"})
        with _loaded_lock:
            _loaded.remember(key.kid, loaded, size=len(key.kid))
    return loaded


def _sealer(secret: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEALING_INFO).derive(secret)
    return AESGCM(derived)


def _seal(ctx: Context, kid: str, pem: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + _sealer(ctx.keys[0]).encrypt(nonce, pem, kid.encode())


def _unseal(ctx: Context, key: TokenKeyRecord) -> bytes:
    opened = _open_sealed(ctx.keys, key)
    if opened is None:
        raise ConfigError(
            f"The passkey-API signing key {key.kid} of tenant {key.tenant_id} was sealed with a secret key "
            "that is no longer in PASSGATE_SECRET_KEYS: add that key back, or run `passgate tenant "
            "rotate-key`."
        )
    return opened[1]


def _open_sealed(secrets: list[bytes], key: TokenKeyRecord) -> tuple[int, bytes] | None:
    """(index of the secret key that opens it, the private key PEM), or None when none does. Sealed
    with the first key of its day: any key still listed may open it."""
    nonce, sealed = key.sealed_private_key[:12], key.sealed_private_key[12:]
    for index, secret in enumerate(secrets):
        try:
            return index, _sealer(secret).decrypt(nonce, sealed, key.kid.encode())
        except InvalidTag:
            continue
    return None


@dataclass(frozen=True, slots=True)
class SealedKeys:
    """Which tenants' signing keys the configured secret keys open: `lost` (none does: the tenant
    cannot issue tokens) and `aging` (only a secret key other than the first: retiring it loses them)."""

    lost: list[TenantRecord]
    aging: list[TenantRecord]


def sealed_keys(connection: Connection, secrets: list[bytes]) -> SealedKeys:
    """Try every tenant's signing key (the newest: older ones only verify, through their public key)."""
    lost, aging = [], []
    for tenant in store.list_all(connection):
        key = store.signing_key(connection, tenant.tenant_id)
        if key is None:
            continue
        opened = _open_sealed(secrets, key)
        if opened is None:
            lost.append(tenant)
        elif opened[0] > 0:
            aging.append(tenant)
    return SealedKeys(lost=lost, aging=aging)


def new_token_key(ctx: Context, tenant_id: str, bits: int = DEFAULT_KEY_BITS) -> TokenKeyRecord:
    if bits not in KEY_BITS:
        raise BadRequest(f"The key size must be one of {', '.join(map(str, KEY_BITS))} bits.")
    kid = str(uuid.uuid4())
    key = RSAKey.generate_key(bits, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)
    return TokenKeyRecord(
        kid=kid,
        tenant_id=tenant_id,
        sealed_private_key=_seal(ctx, kid, key.as_pem(private=True)),
        public_jwk=dict(key.as_dict(private=False)),
        created_at=now(),
    )


def published_keys(keys: list[TokenKeyRecord], at: float) -> tuple[list[TokenKeyRecord], list[str]]:
    """(keys to publish, ids of keys to delete): a superseded key is published until every token it
    signed has expired."""
    published, expired = [], []
    superseded_at: float | None = None  # keys are newest first: each was superseded by the one before
    for key in keys:
        if superseded_at is None or at < superseded_at + TOKEN_TTL + CLOCK_SKEW:
            published.append(key)
        else:
            expired.append(key.kid)
        superseded_at = key.created_at
    return published, expired


async def jwks(ctx: Context, tenant_id: str) -> dict[str, Any]:
    def work(connection: Connection) -> list[TokenKeyRecord]:
        open_tenant(connection, tenant_id, None, key_required=False)
        return published_keys(store.token_keys_of(connection, tenant_id), now())[0]

    keys = await ctx.db.run(work, write=False)
    return {"keys": [key.public_jwk for key in keys]}


# --------------------------------------------------------------------------- administration (CLI)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    id: str
    secret: str  # shown once, never stored


def list_tenants(ctx: Context) -> list[TenantRecord]:
    return ctx.db.transact(store.list_all, write=False)


def show_tenant(ctx: Context, tenant_id: str) -> tuple[TenantRecord, list[Any], list[TokenKeyRecord]]:
    """The tenant, its API keys (names and ids only) and its token-signing keys."""
    tid = tenant_id_of(tenant_id)

    def work(connection: Connection) -> tuple[TenantRecord, list[Any], list[TokenKeyRecord]]:
        tenant = open_tenant(connection, tid, None, key_required=False)
        return tenant, list(store.api_keys_of(connection, tid)), store.token_keys_of(connection, tid)

    return ctx.db.transact(work, write=False)


def add_api_key(ctx: Context, tenant_id: str, name: str = "") -> NewApiKey:
    """A new API key, formatted as Hanko's (URL-safe base64 of 64 random bytes, 88 characters)."""
    tid = tenant_id_of(tenant_id)
    secret = base64.urlsafe_b64encode(os.urandom(API_KEY_BYTES)).decode("ascii")

    def work(connection: Connection) -> str:
        open_tenant(connection, tid, None, key_required=False)
        key_id = store.add_api_key(
            connection,
            tenant_id=tid,
            name=name.strip() or "API key",
            secret_hash=api_key_hash(secret),
            at=now(),
        )
        audit_tenant(connection, tid, "api_key_added", key_id=key_id)
        return key_id

    return NewApiKey(id=ctx.db.transact(work), secret=secret)


def list_api_keys(ctx: Context, tenant_id: str) -> list[store.ApiKeyRecord]:
    return list(show_tenant(ctx, tenant_id)[1])


def revoke_api_key(ctx: Context, tenant_id: str, key_id: str) -> None:
    """The key stops working at once, in every process (each call looks its key up)."""
    tid = tenant_id_of(tenant_id)

    def work(connection: Connection) -> None:
        open_tenant(connection, tid, None, key_required=False)
        if not store.revoke_api_key(connection, tid, key_id.strip()):
            raise NotFound("No such API key in this tenant.", code="api_key_not_found")
        audit_tenant(connection, tid, "api_key_revoked", key_id=key_id.strip())

    ctx.db.transact(work)


def rotate_token_key(ctx: Context, tenant_id: str, bits: int = DEFAULT_KEY_BITS) -> TokenKeyRecord:
    """A new signing key; the previous one stays published until its tokens expired."""
    tid = tenant_id_of(tenant_id)
    key = new_token_key(ctx, tid, bits)

    def work(connection: Connection) -> None:
        open_tenant(connection, tid, None, key_required=False)
        store.add_token_key(connection, key)
        store.remove_token_keys(connection, published_keys(store.token_keys_of(connection, tid), now())[1])
        audit_tenant(connection, tid, "token_key_rotated", kid=key.kid)

    ctx.db.transact(work)
    return key


def audit_tenant(
    connection: Connection, tenant_id: str, kind: str, *, by: str = "admin", **detail: Any
) -> None:
    """`by`: `admin` (a command) or `config` (the configuration file, applied at start-up)."""
    audit.record(connection, tenant_id=tenant_id, user_id=None, kind=kind, at=now(), by=by, **detail)
