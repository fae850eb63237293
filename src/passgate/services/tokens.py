"""Session tokens: compact JWTs (HS256, joserfc) that name a session row.

The key list rotates: the first key signs, every listed key verifies, a key removed from the list
(retired) no longer verifies anything. Each key is known by a short id derived from it (`kid`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

from passgate.ceremony.encoding import b64url_encode
from passgate.errors import NotAuthenticated
from passgate.memo import Memo

AUDIENCE = "passgate-session"
REMEMBERED = 4096  # verified tokens kept per process (~0.7 kB each)
LONGEST_TOKEN = 1024  # characters; Passgate's own are ~330
_CLAIMS = jwt.JWTClaimsRegistry(
    exp={"essential": True},
    sid={"essential": True},
    sub={"essential": True},
    aud={"essential": True, "value": AUDIENCE},
)


@dataclass(frozen=True, slots=True)
class SessionClaims:
    session_id: str
    user_id: str
    expires_at: int


def key_id(key: bytes) -> str:
    return b64url_encode(hashlib.sha256(b"passgate-session-key:" + key).digest()[:9])


class SessionTokens:
    """Signs and verifies session tokens with a rotating key list."""

    def __init__(self, keys: list[bytes]):
        if not keys:
            raise ValueError("at least one signing key is required")
        self._keys = [OctKey.import_key(key, {"kid": key_id(key)}) for key in keys]
        self._keyset = KeySet(list[OctKey | RSAKey | ECKey | OKPKey](self._keys))
        self._signing = self._keys[0]
        self._verified: Memo[str, SessionClaims] = Memo(REMEMBERED, longest=LONGEST_TOKEN)

    def issue(self, *, session_id: str, user_id: str, issued_at: float, expires_at: float) -> str:
        claims = {
            "jti": secrets.token_urlsafe(8),  # every issue is a new token (ASVS 7.2.4), even within a second
            "sid": session_id,
            "sub": user_id,
            "aud": AUDIENCE,
            "iat": int(issued_at),
            "exp": int(expires_at),
        }
        header = {"alg": "HS256", "kid": self._signing.kid}
        return jwt.encode(header, claims, self._signing, algorithms=["HS256"])

    def verify(self, token: str) -> SessionClaims:
        """The token's claims; NotAuthenticated when forged, malformed, expired or signed by a retired key.

        A verified token is remembered (bounded): its signature cannot change while this key list is in
        use, so only its expiry is checked again. Forged tokens are never remembered.
        """
        known = self._verified.get(token)
        if known is not None and known.expires_at > time.time():
            return known
        return self._verified.remember(token, self._verify(token), size=len(token))

    def _verify(self, token: str) -> SessionClaims:
        try:
            decoded = jwt.decode(token, self._keyset, algorithms=["HS256"])
            _CLAIMS.validate(decoded.claims)
            claims = decoded.claims
            return SessionClaims(
                session_id=str(claims["sid"]), user_id=str(claims["sub"]), expires_at=int(claims["exp"])
            )
        except (JoseError, ValueError, KeyError, TypeError):
            raise NotAuthenticated(
                "Your session is not valid. Sign in again.", code="session_invalid"
            ) from None
