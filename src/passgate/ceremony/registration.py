"""Registration: creation options, and verification of what `navigator.credentials.create()` returned."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

import cbor2
from webauthn import generate_registration_options, verify_registration_response
from webauthn.helpers import (
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    options_to_json_dict,
)
from webauthn.helpers.cose import COSECRV, COSEKTY, COSEAlgorithmIdentifier
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from passgate.ceremony.client_data import read_client_data
from passgate.ceremony.encoding import b64url_decode
from passgate.ceremony.policy import MAX_CREDENTIAL_ID_LENGTH, RelyingParty
from passgate.errors import CeremonyFailed

CHALLENGE_BYTES = 32
ResidentKey = Literal["required", "preferred", "discouraged"]
Attestation = Literal["none", "indirect", "direct"]  # W3C WebAuthn L3 §5.4.7 (no `enterprise`)
Attachment = Literal["platform", "cross-platform"]
KNOWN_TRANSPORTS = frozenset(transport.value for transport in AuthenticatorTransport)
# The key type (and curve) each supported algorithm must come with (RFC 9053; WebAuthn L3 §5.8.5).
KEY_SHAPES: dict[int, tuple[int, int | None]] = {
    COSEAlgorithmIdentifier.ECDSA_SHA_256: (COSEKTY.EC2, COSECRV.P256),
    COSEAlgorithmIdentifier.EDDSA: (COSEKTY.OKP, COSECRV.ED25519),
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256: (COSEKTY.RSA, None),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCredential:
    """A verified new credential, ready to be stored (W3C WebAuthn L3 §7.1 step 27)."""

    credential_id: bytes
    public_key: bytes
    algorithm: int
    sign_count: int
    aaguid: str
    backup_eligible: bool
    backup_state: bool
    user_verified: bool
    attestation_format: str
    transports: tuple[str, ...]


def descriptors(existing: list[tuple[bytes, str]]) -> list[PublicKeyCredentialDescriptor]:
    """(credential id, comma-separated transports) pairs as WebAuthn descriptors."""
    return [
        PublicKeyCredentialDescriptor(
            id=credential_id,
            transports=[AuthenticatorTransport(t) for t in transports.split(",") if t in KNOWN_TRANSPORTS]
            or None,
        )
        for credential_id, transports in existing
    ]


def begin_registration(
    rp: RelyingParty,
    *,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    exclude: list[tuple[bytes, str]],
    resident_key: ResidentKey = "required",
    attachment: Attachment | None = None,
    attestation: Attestation = "none",
) -> tuple[dict[str, Any], bytes]:
    """Creation options as `{"publicKey": {...}}` JSON, and the fresh challenge to store.

    A discoverable credential is required unless `resident_key` says otherwise (a second factor need
    not be one); `attachment` narrows the authenticators (W3C WebAuthn L3 §5.4.4); user verification
    follows the RP's policy; attestation `none` unless asked for. Asking is a preference: whatever
    statement comes back is verified by `finish_registration`, and `none` is accepted (§7.1: the
    Relying Party decides what to trust).
    """
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.rp_name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=display_name or user_name,
        challenge=challenge,
        timeout=rp.timeout_ms,
        attestation=AttestationConveyancePreference(attestation),
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment(attachment) if attachment else None,
            resident_key=ResidentKeyRequirement(resident_key),
            require_resident_key=resident_key == "required",
            user_verification=UserVerificationRequirement(rp.user_verification),
        ),
        exclude_credentials=descriptors(exclude),
        supported_pub_key_algs=list(rp.algorithms),
    )
    return {"publicKey": options_to_json_dict(options)}, challenge


def finish_registration(
    rp: RelyingParty, *, credential: dict[str, Any], expected_challenge: bytes, origin: str | None = None
) -> NewCredential:
    """Verify an attestation response (W3C WebAuthn L3 §7.1) and return the credential to store.

    `origin` narrows the accepted origins to the one the ceremony began at, when known.
    Raises CeremonyFailed for every failed check; the library's message goes to `detail` only.
    """
    read_client_data(credential).require_top_level()
    expected_origins = [origin] if origin in rp.origins else list(rp.origins)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=expected_origins,
            require_user_verification=rp.require_user_verification,
            supported_pub_key_algs=list(rp.algorithms),
        )
        _check_attestation_object(credential)
        algorithm = _checked_public_key(verified.credential_public_key)
    except CeremonyFailed:
        raise
    except Exception as exc:  # every library failure is a failed ceremony, never a 500
        raise CeremonyFailed(detail=f"{type(exc).__name__}: {exc}") from None
    # §7.1 step 25: credential ids longer than 1023 bytes are refused.
    if len(verified.credential_id) > MAX_CREDENTIAL_ID_LENGTH:
        raise CeremonyFailed(detail="credential id longer than 1023 bytes")
    # FIDO conformance: id must be the base64url of rawId (py_webauthn checks), and rawId well-formed.
    b64url_decode(credential.get("rawId"), field="rawId")
    transports = credential["response"].get("transports") or []
    return NewCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        algorithm=algorithm,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up,
        user_verified=verified.user_verified,
        attestation_format=str(getattr(verified.fmt, "value", verified.fmt)),
        transports=tuple(t for t in transports if isinstance(t, str) and t in KNOWN_TRANSPORTS),
    )


def _checked_public_key(public_key: bytes) -> int:
    """The credential public key's algorithm, once the key is known to be usable for it.

    `none` attestation never loads the key, so a malformed one (kty/alg/crv mismatch, an EC point off
    its curve, a short Ed25519 key, a broken RSA key) is refused here rather than at the first sign-in.
    """
    decoded = decode_credential_public_key(public_key)
    algorithm = int(decoded.alg)
    shape = KEY_SHAPES.get(algorithm)
    if (
        shape is None
        or int(decoded.kty) != shape[0]
        or int(getattr(decoded, "crv", 0) or 0) != (shape[1] or 0)
    ):
        raise CeremonyFailed(detail=f"credential public key kty/crv do not fit alg {algorithm}")
    decoded_public_key_to_cryptography(decoded)  # validates the key material (on-curve point, sizes)
    return algorithm


def _check_attestation_object(credential: dict[str, Any]) -> None:
    """§7.1 step 13 and §8.7, which py_webauthn lets through: `attStmt` must be a map (missing is not
    empty), and `none` attestation carries an empty one."""
    decoded = cbor2.loads(
        b64url_decode(credential["response"]["attestationObject"], field="attestationObject")
    )
    if not isinstance(decoded, dict) or not isinstance(decoded.get("attStmt"), dict):
        raise CeremonyFailed(detail="attestationObject.attStmt is missing or not a map")
    if decoded.get("fmt") == "none" and decoded["attStmt"]:
        raise CeremonyFailed(detail="none attestation with a non-empty attStmt")
