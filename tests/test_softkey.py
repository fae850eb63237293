"""The soft authenticator is honest: py_webauthn accepts what it makes, and each knob breaks one check."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidJSONStructure,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
)

from softkey import (
    AT,
    BE,
    BS,
    ED,
    UP,
    UV,
    Alg,
    SoftAuthenticator,
    SoftCredential,
    SoftKeyError,
    b64url_decode,
    b64url_encode,
    rsa_key,
)

RP_ID = "login.example.com"
ORIGIN = "https://login.example.com"
USER_ID = b"user-handle-0001"
REG_CHALLENGE = b"registration-challenge-0123456789"
AUTH_CHALLENGE = b"authentication-challenge-0123456789"
ALGS: tuple[Alg, ...] = ("ES256", "EdDSA", "RS256")


def make_authenticator(alg: Alg = "ES256", **kwargs: Any) -> SoftAuthenticator:
    if alg == "RS256":
        kwargs.setdefault("private_key", rsa_key())
    return SoftAuthenticator(alg, **kwargs)


def reg_options(*, exclude: list[bytes] | None = None) -> dict[str, Any]:
    options = generate_registration_options(
        rp_id=RP_ID,
        rp_name="Passgate",
        user_name="alice",
        user_id=USER_ID,
        challenge=REG_CHALLENGE,
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude or []],
    )
    return {"publicKey": json.loads(options_to_json(options))}


def auth_options(*, allow: list[bytes] | None = None) -> dict[str, Any]:
    options = generate_authentication_options(
        rp_id=RP_ID,
        challenge=AUTH_CHALLENGE,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in allow or []],
    )
    loaded: dict[str, Any] = json.loads(options_to_json(options))
    return loaded


def verify_reg(response: dict[str, Any]) -> Any:
    return verify_registration_response(
        credential=response,
        expected_challenge=REG_CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=True,
    )


def verify_auth(response: dict[str, Any], cred: SoftCredential, current_count: int = 0) -> Any:
    return verify_authentication_response(
        credential=response,
        expected_challenge=AUTH_CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=cred.public_key_cose,
        credential_current_sign_count=current_count,
        require_user_verification=True,
    )


def registered(alg: Alg = "ES256", **kwargs: Any) -> tuple[SoftAuthenticator, SoftCredential]:
    auth = make_authenticator(alg, **kwargs)
    verify_reg(auth.create(reg_options(), origin=ORIGIN))
    return auth, auth.last_credential


def flags_of(auth_data_b64: str) -> int:
    return b64url_decode(auth_data_b64)[32]


# --------------------------------------------------------------------------- honest ceremonies


@pytest.mark.parametrize("alg", ALGS)
def test_registration_and_authentication_verify(alg: Alg) -> None:
    auth = make_authenticator(alg)
    response = auth.create(reg_options(), origin=ORIGIN)

    verified = verify_reg(response)
    cred = auth.credentials[verified.credential_id]
    assert cred.alg == alg
    assert cred.rp_id == RP_ID
    assert cred.user_handle == USER_ID
    assert verified.credential_public_key == cred.public_key_cose
    assert verified.sign_count == 0
    assert verified.fmt == "none"
    assert verified.user_verified is True
    assert verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
    assert len(verified.credential_id) == 32

    body = response["response"]
    assert response["id"] == response["rawId"] == b64url_encode(cred.credential_id)
    assert response["type"] == "public-key"
    assert response["authenticatorAttachment"] == "platform"
    assert response["clientExtensionResults"] == {}
    assert body["transports"] == ["internal"]
    assert body["publicKeyAlgorithm"] == cred.cose_alg
    assert b64url_decode(body["publicKey"]) == cred.public_key_spki
    attestation = cbor2.loads(b64url_decode(body["attestationObject"]))
    assert attestation == {"fmt": "none", "attStmt": {}, "authData": b64url_decode(body["authenticatorData"])}
    assert all("=" not in v for v in (response["id"], body["clientDataJSON"], body["attestationObject"]))

    for expected_count in (1, 2):
        assertion = auth.get(auth_options(allow=[cred.credential_id]), origin=ORIGIN)
        result = verify_auth(assertion, cred, current_count=expected_count - 1)
        assert result.new_sign_count == expected_count == cred.sign_count
        assert b64url_decode(assertion["response"]["userHandle"]) == USER_ID
        assert assertion["id"] == assertion["rawId"] == cred.id_b64


def test_client_data_is_browser_shaped() -> None:
    auth = make_authenticator()
    response = auth.create(reg_options(), origin=ORIGIN)
    client_data = b64url_decode(response["response"]["clientDataJSON"])
    assert client_data == (
        b'{"type":"webauthn.create","challenge":"'
        + b64url_encode(REG_CHALLENGE).encode()
        + b'","origin":"https://login.example.com","crossOrigin":false}'
    )
    cred = auth.last_credential
    assertion = auth.get(
        auth_options(),
        origin=ORIGIN,
        cross_origin=True,
        top_origin="https://top.example",
        extra_client_data={"other_keys_can_be_added_here": "x"},
    )
    data = json.loads(b64url_decode(assertion["response"]["clientDataJSON"]))
    assert list(data) == [
        "type",
        "challenge",
        "origin",
        "crossOrigin",
        "topOrigin",
        "other_keys_can_be_added_here",
    ]
    assert data["crossOrigin"] is True
    verify_auth(assertion, cred)  # py_webauthn ignores crossOrigin/topOrigin


@pytest.mark.parametrize("alg", ALGS)
def test_packed_self_attestation_verifies(alg: Alg) -> None:
    auth = make_authenticator(alg)
    verified = verify_reg(auth.create(reg_options(), origin=ORIGIN, fmt="packed"))
    assert verified.fmt == "packed"


def test_discoverable_and_unwrapped_options() -> None:
    auth = make_authenticator()
    first = auth.create(reg_options()["publicKey"], origin=ORIGIN)  # inner dict accepted too
    second = auth.create(json.dumps(reg_options()), origin=ORIGIN)  # and a JSON string
    assert first["id"] != second["id"]
    assertion = auth.get({"publicKey": auth_options()}, origin=ORIGIN)  # empty allowCredentials
    assert assertion["id"] == second["id"]
    verify_auth(assertion, auth.last_credential)


def test_allow_credentials_and_explicit_choice() -> None:
    auth = make_authenticator()
    auth.create(reg_options(), origin=ORIGIN)
    first = auth.last_credential
    auth.create(reg_options(), origin=ORIGIN)
    assertion = auth.get(auth_options(allow=[b"not-ours", first.credential_id]), origin=ORIGIN)
    assert assertion["id"] == first.id_b64
    assertion = auth.get(auth_options(), origin=ORIGIN, credential_id=first.credential_id)
    assert assertion["id"] == first.id_b64
    with pytest.raises(SoftKeyError):
        auth.get(auth_options(allow=[b"not-ours"]), origin=ORIGIN)
    with pytest.raises(SoftKeyError):
        auth.get({**auth_options(), "rpId": "other.example.org"}, origin=ORIGIN)  # none for that RP


def test_counter_step_zero_and_explicit_sign_count() -> None:
    auth, cred = registered(counter_step=0)
    for _ in range(2):
        assert verify_auth(auth.get(auth_options(), origin=ORIGIN), cred).new_sign_count == 0
    auth.get(auth_options(), origin=ORIGIN, sign_count=41)
    assert cred.sign_count == 41
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        verify_auth(auth.get(auth_options(), origin=ORIGIN, sign_count=41), cred, current_count=41)


def test_backup_flags() -> None:
    auth, cred = registered(backup_eligible=True, backup_state=True)
    assert (cred.backup_eligible, cred.backup_state) == (True, True)
    result = verify_auth(auth.get(auth_options(), origin=ORIGIN), cred)
    assert result.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    assert result.credential_backed_up is True
    response = auth.get(auth_options(), origin=ORIGIN, bs=False)
    assert flags_of(response["response"]["authenticatorData"]) == UP | UV | BE
    assert cred.backup_state is True  # get knobs do not persist


def test_user_handle_knob_and_user_not_verified() -> None:
    auth, _ = registered()
    assert "userHandle" not in auth.get(auth_options(), origin=ORIGIN, user_handle=None)["response"]
    assert "userHandle" not in auth.get(auth_options(), origin=ORIGIN, user_handle=b"")["response"]
    other = auth.get(auth_options(), origin=ORIGIN, user_handle=b"someone-else")["response"]
    assert b64url_decode(other["userHandle"]) == b"someone-else"

    lazy = make_authenticator(user_verified=False)
    response = lazy.create(reg_options(), origin=ORIGIN)
    with pytest.raises(InvalidRegistrationResponse, match="verification"):
        verify_reg(response)


def test_client_data_bom_is_still_valid_json() -> None:
    auth, cred = registered()
    response = auth.get(auth_options(), origin=ORIGIN, client_data_bom=True)
    assert b64url_decode(response["response"]["clientDataJSON"]).startswith(b"\xef\xbb\xbf")
    verify_auth(response, cred)  # the signature covers the bytes as sent


# --------------------------------------------------------------------------- client-side refusals


def test_exclude_credentials_refused() -> None:
    auth, cred = registered()
    with pytest.raises(SoftKeyError, match="InvalidStateError"):
        auth.create(reg_options(exclude=[cred.credential_id]), origin=ORIGIN)
    verify_reg(auth.create(reg_options(exclude=[b"not-ours"]), origin=ORIGIN))
    forced = auth.create(
        reg_options(exclude=[cred.credential_id]), origin=ORIGIN, ignore_exclude_credentials=True
    )
    verify_reg(forced)


def test_alg_must_be_offered() -> None:
    options = reg_options()
    options["publicKey"]["pubKeyCredParams"] = [{"type": "public-key", "alg": -7}]
    auth = SoftAuthenticator("EdDSA")
    with pytest.raises(SoftKeyError, match="NotSupportedError"):
        auth.create(options, origin=ORIGIN)
    assert auth.credentials == {}
    forced = auth.create(options, origin=ORIGIN, ignore_pub_key_cred_params=True)
    assert forced["response"]["publicKeyAlgorithm"] == -8


# --------------------------------------------------------------------------- knobs break one check


def other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


AUTH_BREAKERS: dict[str, tuple[dict[str, Any], str]] = {
    "tamper_signature": ({"tamper_signature": True}, "signature"),
    "signature": ({"signature": b"\x30\x06\x02\x01\x00\x02\x01\x00"}, "signature"),
    "up": ({"up": False}, "not present"),
    "uv": ({"uv": False}, "verification"),
    "rp_id": ({"rp_id": "evil.example.com"}, "RP ID"),
    "challenge": ({"challenge": b64url_encode(b"stale")}, "challenge"),
    "type": ({"type": "webauthn.create"}, "type"),
    "id_override": ({"id_override": b64url_encode(b"x")}, "id and raw_id"),
    "raw_id_override": ({"raw_id_override": b"x"}, "id and raw_id"),
    "credential_type": ({"credential_type": "password"}, "type"),
    "auth_data_trailing": ({"auth_data_trailing": b"\x00"}, "malformed"),
    "client_data_json": ({"client_data_json": b"[]"}, "malformed"),
    "drop_client_data": ({"drop_client_data": ["challenge"]}, "malformed"),
}


@pytest.mark.parametrize("knob", AUTH_BREAKERS)
def test_authentication_knob_breaks_verification(knob: str) -> None:
    auth, cred = registered()
    verify_auth(auth.get(auth_options(), origin=ORIGIN), cred)  # honest first
    kwargs, message = AUTH_BREAKERS[knob]
    with pytest.raises((InvalidAuthenticationResponse, InvalidJSONStructure), match=message):
        verify_auth(auth.get(auth_options(), origin=ORIGIN, **kwargs), cred)


@pytest.mark.parametrize("alg", ALGS)
def test_tampered_signature_rejected_for_every_alg(alg: Alg) -> None:
    auth, cred = registered(alg)
    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        verify_auth(auth.get(auth_options(), origin=ORIGIN, tamper_signature=True), cred)


def test_sign_with_other_key_or_credential() -> None:
    auth, cred = registered()
    auth.create(reg_options(), origin=ORIGIN)
    second = auth.last_credential
    for signer in (other_key(), second):
        response = auth.get(auth_options(), origin=ORIGIN, credential_id=cred.credential_id, sign_with=signer)
        with pytest.raises(InvalidAuthenticationResponse, match="signature"):
            verify_auth(response, cred)


def test_origin_mismatch() -> None:
    auth, cred = registered()
    response = auth.get(auth_options(), origin="https://evil.example.com", credential_id=cred.credential_id)
    with pytest.raises(InvalidAuthenticationResponse, match="origin"):
        verify_auth(response, cred)


REG_BREAKERS: dict[str, tuple[dict[str, Any], str]] = {
    "up": ({"up": False}, "presence"),
    "rp_id": ({"rp_id": "evil.example.com"}, "RP ID"),
    "challenge": ({"challenge": b64url_encode(b"stale")}, "challenge"),
    "type": ({"type": "webauthn.get"}, "type"),
    "attested_data_without_at_flag": ({"attested_data_without_at_flag": True}, "malformed"),
    "omit_attested_credential_data": ({"omit_attested_credential_data": True}, "malformed"),
    "att_stmt": ({"att_stmt": {"sig": b"x"}}, "attestation statement"),
    "packed tamper_signature": ({"fmt": "packed", "tamper_signature": True}, "signature"),
    "packed sign_with": ({"fmt": "packed", "sign_with": other_key()}, "signature"),
    "cose_alg": ({"cose_alg": -36}, "Unsupported"),
    "id_override": ({"id_override": "x"}, "id and raw_id"),
}


@pytest.mark.parametrize("knob", REG_BREAKERS)
def test_registration_knob_breaks_verification(knob: str) -> None:
    auth = make_authenticator()
    kwargs, message = REG_BREAKERS[knob]
    with pytest.raises((InvalidRegistrationResponse, InvalidJSONStructure), match=message):
        verify_reg(auth.create(reg_options(), origin=ORIGIN, **kwargs))


def _attested(response: dict[str, Any]) -> tuple[int, bytes, bytes, dict[int, Any]]:
    auth_data: bytes = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))["authData"]
    cred_len = int.from_bytes(auth_data[53:55], "big")
    cred_id = auth_data[55 : 55 + cred_len]
    return auth_data[32], auth_data[37:53], cred_id, cbor2.loads(auth_data[55 + cred_len :])


def test_authenticator_data_layout_and_structural_knobs() -> None:
    aaguid = bytes(range(16))
    auth = make_authenticator(aaguid=aaguid, backup_eligible=True)
    flags, got_aaguid, cred_id, cose = _attested(auth.create(reg_options(), origin=ORIGIN))
    assert flags == UP | UV | BE | AT
    assert got_aaguid == aaguid
    assert cred_id == auth.last_credential.credential_id
    assert list(cose) == [1, 3, -1, -2, -3] and cose[1] == 2 and cose[3] == -7 and cose[-1] == 1

    response = auth.create(reg_options(), origin=ORIGIN, cose_alg=-257, credential_id_length=1024)
    _, _, cred_id, cose = _attested(response)
    assert len(cred_id) == 1024 and cose[1] == 2 and cose[3] == -257
    assert response["response"]["publicKeyAlgorithm"] == -257

    response = auth.create(reg_options(), origin=ORIGIN, credential_id=b"fixed-id", flags=0x00)
    assert flags_of(response["response"]["authenticatorData"]) == 0
    assert b"fixed-id" in auth.credentials

    response = auth.get(auth_options(), origin=ORIGIN, extensions={"credProps": True}, bs=True)
    auth_data = b64url_decode(response["response"]["authenticatorData"])
    assert auth_data[32] == UP | UV | BE | BS | ED
    assert cbor2.loads(auth_data[37:]) == {"credProps": True}
    assert auth_data[:32] == hashlib.sha256(RP_ID.encode()).digest()


@pytest.mark.parametrize(
    "make",
    [
        lambda: SoftAuthenticator("ES256", private_key=rsa_key()),
        lambda: SoftAuthenticator("ES256", aaguid=b"short"),
        lambda: SoftAuthenticator("ES256", counter_step=-1),
    ],
)
def test_constructor_validation(make: Callable[[], SoftAuthenticator]) -> None:
    with pytest.raises(ValueError):
        make()
