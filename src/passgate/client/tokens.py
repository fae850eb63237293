"""Verifying finalize tokens through the tenant's JWKS (RS256, RFC 7515/7519), with joserfc.

The key set is cached for the `max-age` the JWKS answer gives; a token signed by a key the cache does
not know (the tenant rotated its key) makes the client fetch the set again, at most once per
`cooldown` seconds so that made-up key ids cannot make it hammer the server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from passgate.client.errors import TokenInvalid
from passgate.client.models import TokenClaims

ALGORITHMS = ["RS256"]
CLOCK_SKEW = 60  # seconds a token's iat may lie in the future
DEFAULT_JWKS_TTL = 600.0
MAX_JWKS_TTL = 3600.0


@dataclass
class KeyCache:
    """The tenant's public keys, when they were fetched and for how long they hold."""

    cooldown: float = 5.0
    keys: KeySet | None = None
    fetched_at: float = float("-inf")
    ttl: float = 0.0

    def wants_fetch(self, kid: str | None, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.keys is None or now >= self.fetched_at + self.ttl:
            return True
        known = any(key.kid == kid for key in self.keys)
        return not known and now >= self.fetched_at + self.cooldown

    def load(self, jwks: Any, ttl: float) -> None:
        try:
            self.keys = KeySet.import_key_set(jwks)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise TokenInvalid(f"the JWKS is unreadable: {exc}") from None
        self.fetched_at = time.monotonic()
        self.ttl = min(max(ttl, 0.0), MAX_JWKS_TTL)


def key_id(token: str) -> str | None:
    """The `kid` of the token's header (before any verification), TokenInvalid when it is no JWS."""
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, UnicodeError) as exc:
        raise TokenInvalid(f"malformed token: {exc}") from None
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def verify(
    token: str,
    keys: KeySet,
    *,
    tenant_id: str,
    audience: str | None = None,
    max_age: float | None = None,
    transaction_id: str | None = None,
    require_uv: bool = False,
    now: float | None = None,
) -> TokenClaims:
    """The token's claims once its signature (by one of `keys`), `exp`, `iat`, `aud` (when `audience`
    is given), `iss` (when present: this tenant's), and the step-up conditions hold."""
    now = time.time() if now is None else now
    try:
        claims: dict[str, Any] = jwt.decode(token, keys, algorithms=ALGORITHMS).claims
    except InvalidKeyIdError:
        raise TokenInvalid("signed by a key the tenant does not publish") from None
    except (JoseError, ValueError, UnicodeError) as exc:
        raise TokenInvalid(f"bad token: {exc}") from None
    try:
        result = TokenClaims.from_json(claims)
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenInvalid(f"missing or malformed claim {exc}") from None
    if result.expires_at <= now:
        raise TokenInvalid("expired")
    if result.issued_at > now + CLOCK_SKEW or result.auth_time > now + CLOCK_SKEW:
        raise TokenInvalid("issued in the future")
    if audience is not None and audience not in result.audience:
        raise TokenInvalid("for another audience")
    if result.issuer is not None and not result.issuer.endswith(f"/passkeys/{tenant_id}"):
        raise TokenInvalid("issued for another tenant")
    if max_age is not None and now - result.auth_time > max_age:
        raise TokenInvalid(f"the passkey check is older than {max_age:g} s")
    if transaction_id is not None and result.transaction_id != transaction_id:
        raise TokenInvalid("for another transaction")
    if require_uv and result.user_verified is not True:
        raise TokenInvalid("the passkey check did not verify the user")
    return result
