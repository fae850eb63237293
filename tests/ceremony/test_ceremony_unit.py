"""Unit tests of the pure ceremony functions (no HTTP, no database): options (R-32, A-26, N-01),
`read_client_data` edge cases (R-05..R-12), strict base64url, and the verification order that keeps
failures uniform (A-08) and counters honest (A-22)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from passgate.ceremony.authentication import (
    CounterRegressed,
    StoredCredential,
    begin_authentication,
    finish_authentication,
    verify_unknown,
)
from passgate.ceremony.client_data import read_client_data
from passgate.ceremony.encoding import b64url_decode, b64url_encode
from passgate.ceremony.policy import RelyingParty
from passgate.ceremony.registration import begin_registration, finish_registration
from passgate.errors import BadRequest, CeremonyFailed
from passgate.services.registration import USER_HANDLE_BYTES
from softkey import SoftAuthenticator

ORIGIN = "http://localhost:8000"
RP = RelyingParty(rp_id="localhost", rp_name="Passgate", origins=(ORIGIN,))


def registration_options(**overrides: Any) -> tuple[dict[str, Any], bytes]:
    rp = overrides.pop("rp", RP)
    values: dict[str, Any] = {
        "user_handle": b"\x01" * 32,
        "user_name": "alice@example.com",
        "display_name": "Alice",
        "exclude": [],
    }
    values.update(overrides)
    return begin_registration(rp, **values)


# --- options


def test_creation_options_challenge_is_random_fresh_and_returned() -> None:
    seen = set()
    for _ in range(20):
        options, challenge = registration_options()
        assert len(challenge) >= 16
        assert b64url_decode(options["publicKey"]["challenge"]) == challenge
        seen.add(challenge)
    assert len(seen) == 20


def test_creation_options_user_rp_and_policy() -> None:
    options = registration_options()[0]["publicKey"]
    assert b64url_decode(options["user"]["id"]) == b"\x01" * 32
    assert options["user"]["name"] == "alice@example.com" and options["user"]["displayName"] == "Alice"
    assert options["rp"] == {"id": "localhost", "name": "Passgate"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["requireResidentKey"] is True
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["attestation"] == "none"
    assert [param["alg"] for param in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert options["timeout"] == RP.timeout_ms


def test_creation_options_follow_the_uv_policy_and_algorithms() -> None:
    from webauthn.helpers.cose import COSEAlgorithmIdentifier

    strict = RelyingParty(
        rp_id="localhost",
        rp_name="P",
        origins=(ORIGIN,),
        user_verification="required",
        algorithms=(COSEAlgorithmIdentifier.ECDSA_SHA_256,),
    )
    options = begin_registration(strict, user_handle=b"h" * 16, user_name="a", display_name="", exclude=[])[0]
    assert options["publicKey"]["authenticatorSelection"]["userVerification"] == "required"
    assert [param["alg"] for param in options["publicKey"]["pubKeyCredParams"]] == [-7]
    assert options["publicKey"]["user"]["displayName"] == "a"  # empty display name falls back to the name


def test_creation_options_exclude_credentials_as_given() -> None:
    existing = [(b"\x02" * 32, "internal,hybrid"), (b"\x03" * 64, "bogus"), (b"\x04", "")]
    options = registration_options(exclude=existing)[0]["publicKey"]
    assert [b64url_decode(item["id"]) for item in options["excludeCredentials"]] == [c for c, _ in existing]
    assert options["excludeCredentials"][0]["transports"] == ["internal", "hybrid"]
    assert "transports" not in options["excludeCredentials"][1]  # unknown transports are dropped
    assert all(item["type"] == "public-key" for item in options["excludeCredentials"])


def test_user_handle_size_is_opaque_and_short() -> None:
    """N-01: the services hand out random handles of this size (≤ 64 bytes, W3C WebAuthn §5.4.3)."""
    assert 16 <= USER_HANDLE_BYTES <= 64


def test_request_options_challenge_fresh_and_allow_list_as_given() -> None:
    first, first_challenge = begin_authentication(RP, allow=[])
    second, second_challenge = begin_authentication(RP, allow=[(b"\x05" * 32, "usb,nfc")])
    assert len(first_challenge) >= 16 and first_challenge != second_challenge
    assert b64url_decode(first["publicKey"]["challenge"]) == first_challenge
    assert first["publicKey"]["allowCredentials"] == []
    assert first["publicKey"]["rpId"] == "localhost"
    assert first["publicKey"]["userVerification"] == "preferred"
    allow = second["publicKey"]["allowCredentials"]
    assert [b64url_decode(item["id"]) for item in allow] == [b"\x05" * 32]
    assert allow[0]["transports"] == ["usb", "nfc"]


def test_request_options_user_verification_override() -> None:
    options = begin_authentication(RP, allow=[], user_verification="required")[0]
    assert options["publicKey"]["userVerification"] == "required"


# --- read_client_data


def credential_with(raw: bytes | str) -> dict[str, Any]:
    encoded = raw if isinstance(raw, str) else b64url_encode(raw)
    return {"response": {"clientDataJSON": encoded}}


def client_data_json(**members: Any) -> bytes:
    data = {"type": "webauthn.get", "challenge": b64url_encode(b"c" * 32), "origin": ORIGIN, **members}
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_read_client_data_plain() -> None:
    data = read_client_data(credential_with(client_data_json()))
    assert (data.type, data.challenge, data.origin) == ("webauthn.get", b"c" * 32, ORIGIN)
    assert not data.cross_origin and not data.has_top_origin
    data.require_top_level()


def test_read_client_data_strips_a_bom() -> None:
    assert read_client_data(credential_with(b"\xef\xbb\xbf" + client_data_json())).challenge == b"c" * 32


def test_read_client_data_keeps_unknown_and_reordered_members() -> None:
    raw = json.dumps(
        {"extra": {"x": 1}, "origin": ORIGIN, "challenge": b64url_encode(b"c" * 32), "type": "t"}
    )
    data = read_client_data(credential_with(raw.encode()))
    assert (data.type, data.origin) == ("t", ORIGIN)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"challenge": "\xff"}', id="not-utf8"),
        pytest.param(b"\xfe\xff" + client_data_json().decode().encode("utf-16-be"), id="utf16"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"x"', id="string"),
        pytest.param(b"", id="empty"),
        pytest.param(client_data_json(challenge=...), id="no-challenge"),
        pytest.param(client_data_json(challenge=""), id="empty-challenge"),
        pytest.param(client_data_json(challenge=123), id="challenge-not-string"),
        pytest.param(client_data_json(challenge="a+b/"), id="challenge-std-base64"),
        pytest.param(client_data_json(challenge=b64url_encode(b"c" * 32) + "="), id="challenge-padded"),
        pytest.param(client_data_json(challenge="A"), id="challenge-impossible-length"),
    ],
)
def test_read_client_data_refuses(raw: bytes) -> None:
    with pytest.raises(CeremonyFailed):
        read_client_data(credential_with(raw))


@pytest.mark.parametrize("response", [None, "x", [1]], ids=["missing", "string", "array"])
def test_read_client_data_response_not_an_object(response: Any) -> None:
    with pytest.raises(CeremonyFailed):
        read_client_data({"response": response} if response is not None else {})


@pytest.mark.parametrize("encoded", ["AAAA=", "a+b/", "A", 12, None])
def test_read_client_data_not_base64url(encoded: Any) -> None:
    with pytest.raises(BadRequest):
        read_client_data({"response": {"clientDataJSON": encoded}})


def test_read_client_data_leaves_type_and_origin_to_verification() -> None:
    """Members other than the challenge are judged after the challenge was consumed (burnt)."""
    data = read_client_data(credential_with(client_data_json(type=..., origin=42)))
    assert (data.type, data.origin) == ("", "")


@pytest.mark.parametrize(
    "value", [True, "true", "false", 1, {}], ids=["true", "str-true", "str-false", "one", "obj"]
)
def test_cross_origin_refused(value: Any) -> None:
    data = read_client_data(credential_with(client_data_json(crossOrigin=value)))
    with pytest.raises(CeremonyFailed):
        data.require_top_level()


@pytest.mark.parametrize("value", [False, None], ids=["false", "null"])
def test_cross_origin_false_allowed(value: Any) -> None:
    read_client_data(credential_with(client_data_json(crossOrigin=value))).require_top_level()


@pytest.mark.parametrize("value", [ORIGIN, "", None], ids=["same", "empty", "null"])
def test_top_origin_refused(value: Any) -> None:
    data = read_client_data(credential_with(client_data_json(topOrigin=value)))
    with pytest.raises(CeremonyFailed):
        data.require_top_level()


# --- encoding


@pytest.mark.parametrize("value", ["AAAA=", "AA==", "a+b/", "a b", "A", "AAAA\n", 7, None, b"AAAA"])
def test_b64url_decode_is_strict(value: Any) -> None:
    with pytest.raises(BadRequest):
        b64url_decode(value)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xfb\xff", os.urandom(33)])
def test_b64url_round_trip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded and b64url_decode(encoded) == data


# --- verification order


def registered() -> tuple[SoftAuthenticator, StoredCredential]:
    authenticator = SoftAuthenticator()
    options, challenge = registration_options()
    new = finish_registration(
        RP, credential=authenticator.create(options, origin=ORIGIN), expected_challenge=challenge
    )
    stored = StoredCredential(
        credential_id=new.credential_id,
        public_key=new.public_key,
        sign_count=5,
        backup_eligible=new.backup_eligible,
        owner_user_handle=b"\x01" * 32,
    )
    return authenticator, stored


def assert_verdict(
    authenticator: SoftAuthenticator, stored: StoredCredential, error: type[Exception] | None, **knobs: Any
) -> None:
    options, challenge = begin_authentication(RP, allow=[])
    credential = authenticator.get(options, origin=ORIGIN, **knobs)
    kwargs: dict[str, Any] = {
        "credential": credential,
        "expected_challenge": challenge,
        "stored": stored,
        "allowed_ids": None,
        "require_user_verification": False,
    }
    if error is None:
        finish_authentication(RP, **kwargs)
        return
    with pytest.raises(error) as raised:
        finish_authentication(RP, **kwargs)
    assert type(raised.value) is error


def test_counter_regression_is_its_own_failure_after_a_valid_signature() -> None:
    authenticator, stored = registered()
    assert_verdict(authenticator, stored, CounterRegressed, sign_count=5)
    assert_verdict(authenticator, stored, CounterRegressed, sign_count=0)
    assert_verdict(authenticator, stored, None, sign_count=6)


def test_low_counter_with_a_bad_signature_or_wrong_user_is_not_a_regression() -> None:
    authenticator, stored = registered()
    assert_verdict(authenticator, stored, CeremonyFailed, sign_count=1, tamper_signature=True)
    assert_verdict(authenticator, stored, CeremonyFailed, sign_count=1, user_handle=b"\x09" * 32)
    assert_verdict(authenticator, stored, CeremonyFailed, sign_count=1, user_handle=None)


def test_both_counters_zero_accepted() -> None:
    authenticator, stored = registered()
    zero = StoredCredential(
        **{**{s: getattr(stored, s) for s in StoredCredential.__slots__}, "sign_count": 0}
    )
    authenticator.counter_step = 0
    assert_verdict(authenticator, zero, None)


def test_credential_outside_allow_list_refused_even_with_valid_signature() -> None:
    authenticator, stored = registered()
    options, challenge = begin_authentication(RP, allow=[(b"other", "")])
    credential = authenticator.get(options, origin=ORIGIN, credential_id=stored.credential_id)
    with pytest.raises(CeremonyFailed):
        finish_authentication(
            RP,
            credential=credential,
            expected_challenge=challenge,
            stored=stored,
            allowed_ids=frozenset({b"other"}),
            require_user_verification=False,
        )


def test_verify_unknown_always_fails() -> None:
    authenticator, _stored = registered()
    options, challenge = begin_authentication(RP, allow=[])
    credential = authenticator.get(options, origin=ORIGIN)
    with pytest.raises(CeremonyFailed):
        verify_unknown(RP, credential=credential, expected_challenge=challenge)
