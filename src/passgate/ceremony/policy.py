"""The relying party's policy: who we are, which origins we accept, what we require."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from webauthn.helpers.cose import COSEAlgorithmIdentifier

UserVerification = Literal["required", "preferred", "discouraged"]

ALGORITHMS = {
    "ES256": COSEAlgorithmIdentifier.ECDSA_SHA_256,
    "EdDSA": COSEAlgorithmIdentifier.EDDSA,
    "RS256": COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
}
MAX_CREDENTIAL_ID_LENGTH = 1023  # W3C WebAuthn L3 §7.1 step 25


@dataclass(frozen=True, slots=True, kw_only=True)
class RelyingParty:
    """One RP ID with its allowed origins; the first-party pages and each passkey-API tenant have one."""

    rp_id: str
    rp_name: str
    origins: tuple[str, ...]
    user_verification: UserVerification = "preferred"
    algorithms: tuple[COSEAlgorithmIdentifier, ...] = tuple(ALGORITHMS.values())
    timeout_ms: int = 120_000

    @property
    def require_user_verification(self) -> bool:
        return self.user_verification == "required"
