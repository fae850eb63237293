"""Authentication: request options, and verification of what `navigator.credentials.get()` returned."""

from __future__ import annotations

import contextlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from webauthn import generate_authentication_options, verify_authentication_response
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.structs import CredentialDeviceType, UserVerificationRequirement

from passgate.ceremony.client_data import ClientData, read_client_data
from passgate.ceremony.encoding import b64url_decode
from passgate.ceremony.policy import RelyingParty
from passgate.ceremony.registration import CHALLENGE_BYTES, descriptors
from passgate.errors import CeremonyFailed


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCredential:
    """What the ceremony needs of a stored credential and its owner."""

    credential_id: bytes
    public_key: bytes
    sign_count: int
    backup_eligible: bool
    owner_user_handle: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AssertionResult:
    """A verified assertion: the values to write back to the credential record (§7.2 step 24)."""

    credential_id: bytes
    sign_count: int
    backup_state: bool
    user_verified: bool


class CounterRegressed(CeremonyFailed):
    """The signature was valid but the sign count did not increase: a possible cloned authenticator."""


def begin_authentication(
    rp: RelyingParty,
    *,
    allow: list[tuple[bytes, str]],
    user_verification: str | None = None,
    challenge: bytes | None = None,
) -> tuple[dict[str, Any], bytes]:
    """Request options as `{"publicKey": {...}}` JSON and the fresh challenge to store.

    An empty `allow` list means a usernameless (discoverable) ceremony, usable with conditional mediation.
    `challenge` replaces the random one when the caller binds data into it (it must hold at least
    `CHALLENGE_BYTES` fresh random bytes itself, W3C WebAuthn L3 §13.4.3).
    """
    if challenge is None:
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
    elif len(challenge) < CHALLENGE_BYTES:
        raise ValueError("a challenge needs at least CHALLENGE_BYTES bytes")
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        timeout=rp.timeout_ms,
        allow_credentials=descriptors(allow),
        user_verification=UserVerificationRequirement(user_verification or rp.user_verification),
    )
    return {"publicKey": options_to_json_dict(options)}, challenge


def credential_id_of(credential: dict[str, Any]) -> bytes:
    """The raw credential id an assertion names (unsigned: only a lookup key until verified, §13.1)."""
    return b64url_decode(credential.get("rawId"), field="rawId")


def finish_authentication(
    rp: RelyingParty,
    *,
    credential: dict[str, Any],
    expected_challenge: bytes,
    stored: StoredCredential,
    allowed_ids: frozenset[bytes] | None,
    require_user_verification: bool,
    origin: str | None = None,
    client_data: ClientData | None = None,
) -> AssertionResult:
    """Verify an assertion (W3C WebAuthn L3 §7.2) against a stored credential. `client_data`: its
    `clientDataJSON` as already read to find the ceremony (read here when not given).

    Raises CeremonyFailed for every failed check, and CounterRegressed (after the signature verified)
    when the sign count went backwards.
    """
    # These failures are raised only after the signature was verified anyway, so that a wrong account
    # costs the same time as a bad signature (§14.6.2) and never reaches the counter check.
    problem: str | None = None
    # §7.2 step 5: when allowCredentials was given, the credential must be one of them.
    if allowed_ids is not None and stored.credential_id not in allowed_ids:
        problem = "credential not in allowCredentials"
    # §7.2 step 6: a returned user handle must be the owner's; a usernameless ceremony requires one.
    user_handle = _user_handle(credential)
    if user_handle is not None and not hmac.compare_digest(user_handle, stored.owner_user_handle):
        problem = "userHandle does not match the credential's owner"
    if user_handle is None and allowed_ids is None:
        problem = "usernameless ceremony without userHandle"
    # §7.2 steps 13-14: no cross-origin embedding.
    (client_data or read_client_data(credential)).require_top_level()
    expected_origins = [origin] if origin in rp.origins else list(rp.origins)
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=expected_origins,
            credential_public_key=stored.public_key,
            credential_current_sign_count=0,  # the counter is judged below, after the signature
            require_user_verification=require_user_verification,
        )
    except Exception as exc:  # every library failure is a failed ceremony, never a 500
        raise CeremonyFailed(detail=problem or f"{type(exc).__name__}: {exc}") from None
    if problem is not None:
        raise CeremonyFailed(detail=problem)
    if verified.credential_id != stored.credential_id:
        raise CeremonyFailed(detail="rawId does not name the stored credential")
    # §7.2 step 19: backup eligibility never changes for a credential.
    backup_eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    if backup_eligible != stored.backup_eligible:
        raise CeremonyFailed(detail="backup eligibility changed")
    # §7.2 step 22: a counter that does not increase (unless both are 0) signals a cloned authenticator.
    new_count = verified.new_sign_count
    check_counter(new_count, stored.sign_count)
    return AssertionResult(
        credential_id=stored.credential_id,
        sign_count=new_count,
        backup_state=verified.credential_backed_up,
        user_verified=verified.user_verified,
    )


def check_counter(new_count: int, stored_count: int) -> None:
    """§7.2 step 22: raise CounterRegressed unless the sign count increased (or both are 0)."""
    if (new_count or stored_count) and new_count <= stored_count:
        raise CounterRegressed(detail=f"sign count {new_count} <= stored {stored_count}")


def _user_handle(credential: dict[str, Any]) -> bytes | None:
    response = credential.get("response")
    value = response.get("userHandle") if isinstance(response, dict) else None
    if value is None or value == "":
        return None
    return b64url_decode(value, field="userHandle")


def verify_unknown(rp: RelyingParty, *, credential: dict[str, Any], expected_challenge: bytes) -> None:
    """Spend the same work as a real verification for a credential nobody owns, then fail.

    Keeps an unknown credential indistinguishable by timing from a bad signature (§14.6.2).
    """
    decoy = StoredCredential(
        credential_id=credential_id_of(credential),
        public_key=_decoy_public_key(),
        sign_count=0,
        backup_eligible=False,
        owner_user_handle=_user_handle(credential) or b"",
    )
    with contextlib.suppress(CeremonyFailed):
        finish_authentication(
            rp,
            credential=credential,
            expected_challenge=expected_challenge,
            stored=decoy,
            allowed_ids=None,
            require_user_verification=False,
        )
    raise CeremonyFailed(detail="unknown credential")


@cache
def _decoy_public_key() -> bytes:
    import cbor2

    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    return cbor2.dumps(
        {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    )
