"""Every relying-party check of W3C WebAuthn L3 §7.1 (registering a new credential) that applies to
`none`/self attestation as a negative test, through `/auth/register/finish` and `/auth/credentials/finish`
of the ASGI app, one software-authenticator knob per test (test names carry the check's id, R-01…R-32,
in §7.1's step order).

Every refusal asserts: the 4xx and its `code`, that nothing was written (accounts, credentials,
sessions, audit events), and, when the response named a readable challenge, that the challenge is burnt
(an honest response to the same options is refused afterwards).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cbor2
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from flows import ORIGIN, Passkeys, unique_name
from passgate.services import registration
from passgate.services.context import Context
from seckit import (
    Mutation,
    assert_refused,
    build_context,
    challenge_stored,
    client_data,
    client_for,
    credential_row,
    db_state,
    edit_attestation,
    expire_challenge,
    module_app,
    pop,
    put,
    set_client_data_bytes,
    settings_for,
    write_lock_seen,
)
from softkey import SoftAuthenticator, b64url_decode, b64url_encode, cose_public_key, rsa_key

REGISTER = "/auth/register/finish"
TLS_ORIGIN = "https://app.localhost:8443"


class Registration:
    """One browser signing up, with helpers to refuse and accept responses."""

    def __init__(self, http: httpx.AsyncClient, ctx: Context, origin: str = ORIGIN):
        self.http = http
        self.ctx = ctx
        self.origin = origin
        self.authenticator = SoftAuthenticator()

    async def begin(self, user_name: str | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/auth/register/begin", json={"user_name": user_name or unique_name()}
        )
        assert response.status_code == 200, response.text
        options: dict[str, Any] = response.json()
        return options

    def create(self, options: dict[str, Any], **knobs: Any) -> dict[str, Any]:
        knobs.setdefault("origin", self.origin)
        return self.authenticator.create(options, **knobs)

    async def refused(
        self,
        code: str = "ceremony_failed",
        *,
        mutate: Mutation | None = None,
        burnt: bool = True,
        status: int = 400,
        **knobs: Any,
    ) -> httpx.Response:
        options = await self.begin()
        before = db_state(self.ctx)
        credential = self.create(options, **knobs)
        if mutate is not None:
            mutate(credential)
        response = await self.http.post(REGISTER, json=credential)
        assert_refused(response, code, status)
        assert db_state(self.ctx) == before, "a refused sign-up wrote something"
        if burnt:
            assert not challenge_stored(self.ctx, options), "the challenge survived a failed finish"
            honest = SoftAuthenticator().create(options, origin=self.origin)
            assert_refused(await self.http.post(REGISTER, json=honest), "ceremony_failed")
            assert db_state(self.ctx) == before
        return response

    async def accepted(self, *, mutate: Mutation | None = None, **knobs: Any) -> dict[str, Any]:
        options = await self.begin()
        credential = self.create(options, **knobs)
        if mutate is not None:
            mutate(credential)
        response = await self.http.post(REGISTER, json=credential)
        assert response.status_code == 200, response.text
        assert (await self.http.get("/auth/me")).status_code == 200
        self.http.cookies.clear()
        return credential


ctx, app = module_app("registration")


@pytest.fixture
async def client(ctx: Context, app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(ctx, ORIGIN, app) as http:
        yield http


@pytest.fixture
def reg(client: httpx.AsyncClient, ctx: Context) -> Registration:
    return Registration(client, ctx)


def make_tls_context(data_dir: Path) -> Context:
    return build_context(settings_for(data_dir, rp_id="localhost", origins=[TLS_ORIGIN]))


tls_ctx, tls_app = module_app("tls", "tls_", rp_id="localhost", origins=[TLS_ORIGIN])


@pytest.fixture
async def tls_reg(tls_ctx: Context, tls_app: Any) -> AsyncIterator[Registration]:
    async with client_for(tls_ctx, TLS_ORIGIN, tls_app) as http:
        yield Registration(http, tls_ctx, TLS_ORIGIN)


async def custom(tmp_path: Path, **overrides: Any) -> tuple[Context, httpx.AsyncClient]:
    context = build_context(settings_for(tmp_path / "custom", **overrides))
    return context, client_for(context, ORIGIN)


# --- R-01..R-04: the JSON envelope


def _assertion_shaped(credential: dict[str, Any]) -> None:
    response = credential["response"]
    credential["response"] = {
        "clientDataJSON": response["clientDataJSON"],
        "authenticatorData": response["authenticatorData"],
        "signature": b64url_encode(b"\x30\x06\x02\x01\x01\x02\x01\x01"),
    }


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(pop("response"), id="missing"),
        pytest.param(put("response", value="not an object"), id="string"),
        pytest.param(put("response", value=[1, 2]), id="array"),
        pytest.param(_assertion_shaped, id="assertion-response"),
    ],
)
async def test_R01_response_not_an_attestation_response(reg: Registration, mutate: Mutation) -> None:
    await reg.refused("invalid_request", mutate=mutate, burnt=False)


_STD = base64.b64encode(b"\xfb\xff\xfe" * 11).decode()  # has '+' and '/'


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(pop("id"), id="id-missing"),
        pytest.param(pop("rawId"), id="rawId-missing"),
        pytest.param(put("id", value=12345), id="id-not-string"),
        pytest.param(put("rawId", value=["AAAA"]), id="rawId-not-string"),
        pytest.param(put("rawId", value=_STD), id="rawId-std-base64"),
        pytest.param(put("id", value=_STD), id="id-std-base64"),
        pytest.param(put("rawId", value="AAAAAA=="), id="rawId-padded"),
        pytest.param(put("id", value="AAAAAA=="), id="id-padded"),
        pytest.param(put("id", value=""), id="id-empty"),
    ],
)
async def test_R02_id_rawid_malformed(reg: Registration, mutate: Mutation) -> None:
    await reg.refused("invalid_request", mutate=mutate, burnt=False)


@pytest.mark.parametrize("knob", ["id_override", "raw_id_override"])
async def test_R02_id_differs_from_rawid(reg: Registration, knob: str) -> None:
    other: Any = b64url_encode(os.urandom(32)) if knob == "id_override" else os.urandom(32)
    knobs: dict[str, Any] = {knob: other}
    await reg.refused(**knobs)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(pop("type"), id="missing"),
        pytest.param(put("type", value=1), id="not-string"),
        pytest.param(put("type", value="avocado-toast"), id="avocado-toast"),
    ],
)
async def test_R03_credential_type_not_public_key(reg: Registration, mutate: Mutation) -> None:
    await reg.refused("invalid_request", mutate=mutate, burnt=False)


@pytest.mark.parametrize("field", ["clientDataJSON", "attestationObject"])
@pytest.mark.parametrize(
    "value",
    [pytest.param(None, id="missing"), 42, "", "not base64url!", "QUJD+/==", "QUJDRA=="],
)
async def test_R04_client_data_or_attestation_object_malformed(
    reg: Registration, field: str, value: Any
) -> None:
    mutate = pop("response", field) if value is None else put("response", field, value=value)
    await reg.refused("invalid_request", mutate=mutate, burnt=False)


async def test_R04_client_data_json_impossible_base64url_length(reg: Registration) -> None:
    await reg.refused(
        "invalid_base64url", mutate=put("response", "clientDataJSON", value="AAAAA"), burnt=False
    )


async def test_R04_attestation_object_impossible_base64url_length(reg: Registration) -> None:
    await reg.refused(mutate=put("response", "attestationObject", value="AAAAA"))


# --- R-05..R-13: clientDataJSON


def _client_data_bytes(edit: Any) -> Mutation:
    """Re-serialise clientDataJSON through `edit(dict) -> bytes`."""

    def mutate(credential: dict[str, Any]) -> None:
        set_client_data_bytes(credential, edit(client_data(credential)))

    return mutate


async def test_R05_client_data_not_utf8(reg: Registration) -> None:
    def invalid(data: dict[str, Any]) -> bytes:
        return json.dumps({**data, "origin": "@@"}).encode().replace(b"@@", b"\xff\xfe")

    await reg.refused(mutate=_client_data_bytes(invalid), burnt=False)


async def test_R05_client_data_with_bom_accepted(reg: Registration) -> None:
    await reg.accepted(client_data_bom=True)


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2, 3]", b'"webauthn.create"', b"null", b"{"],
    ids=["text", "array", "string", "null", "truncated"],
)
async def test_R06_client_data_not_a_json_object(reg: Registration, raw: bytes) -> None:
    await reg.refused(client_data_json=raw, burnt=False)


async def test_R06_client_data_extra_keys_accepted(reg: Registration) -> None:
    await reg.accepted(extra_client_data={"other_keys_can_be_added_here": "do not compare", "extraData": "x"})


async def test_R06_client_data_reordered_keys_accepted(reg: Registration) -> None:
    def reordered(data: dict[str, Any]) -> bytes:
        return json.dumps(dict(reversed(list(data.items())))).encode()

    await reg.accepted(mutate=_client_data_bytes(reordered))


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"drop_client_data": ["type"]}, id="missing"),
        pytest.param({"extra_client_data": {"type": 7}}, id="not-string"),
        pytest.param({"type": ""}, id="empty"),
        pytest.param({"type": "webauthn.get"}, id="webauthn.get"),
        pytest.param({"type": "webauthn.create "}, id="trailing-space"),
        pytest.param({"type": "WEBAUTHN.CREATE"}, id="upper-case"),
    ],
)
async def test_R07_client_data_type_not_create(reg: Registration, knobs: dict[str, Any]) -> None:
    await reg.refused(**knobs)


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"drop_client_data": ["challenge"]}, id="missing"),
        pytest.param({"extra_client_data": {"challenge": 12345}}, id="not-string"),
        pytest.param({"challenge": ""}, id="empty"),
        pytest.param({"challenge": "not base64url!"}, id="not-base64url"),
        pytest.param({"challenge": b64url_encode(os.urandom(32))}, id="not-issued"),
    ],
)
async def test_R08_challenge_wrong(reg: Registration, knobs: dict[str, Any]) -> None:
    """V-13: the challenge is compared. (No challenge named: nothing to burn, nothing written.)"""
    await reg.refused(burnt=False, **knobs)


async def test_R08_challenge_padded(reg: Registration) -> None:
    options = await reg.begin()
    before = db_state(reg.ctx)
    padded = options["publicKey"]["challenge"] + "=" * (-len(options["publicKey"]["challenge"]) % 4 or 4)
    credential = reg.create(options, challenge=padded)
    assert_refused(await reg.http.post(REGISTER, json=credential), "ceremony_failed")
    assert db_state(reg.ctx) == before


async def test_R09_replay_of_a_successful_response(reg: Registration) -> None:
    options = await reg.begin()
    credential = reg.create(options)
    assert (await reg.http.post(REGISTER, json=credential)).status_code == 200
    reg.http.cookies.clear()
    before = db_state(reg.ctx)
    assert_refused(await reg.http.post(REGISTER, json=credential), "ceremony_failed")
    assert db_state(reg.ctx) == before


async def test_R09_expired_challenge(tmp_path: Path) -> None:
    ctx, http = await custom(tmp_path, challenge_ttl=30)
    async with http:
        reg = Registration(http, ctx)
        options = await reg.begin()
        expire_challenge(ctx, options)
        before = db_state(ctx)
        assert_refused(await http.post(REGISTER, json=reg.create(options)), "ceremony_failed")
        assert db_state(ctx) == before
        assert not challenge_stored(ctx, options)
    ctx.db.dispose()


async def test_R09_challenge_lifetime_follows_settings(tmp_path: Path) -> None:
    import time

    from sqlalchemy import select

    from passgate.store.models import challenges

    ctx, http = await custom(tmp_path, challenge_ttl=30)
    async with http:
        await Registration(http, ctx).begin()
        (expires_at,) = ctx.db.transact(lambda c: c.execute(select(challenges.c.expires_at)).one())
        assert time.time() + 25 < expires_at <= time.time() + 30
    ctx.db.dispose()


ORIGIN_MATRIX = [
    pytest.param("http://app.localhost:8443", id="http-scheme"),
    pytest.param("https://app.localhost:9443", id="other-port"),
    pytest.param("https://app.localhost", id="default-port"),
    pytest.param("https://other.localhost:8443", id="other-subdomain"),
    pytest.param("https://localhost:8443", id="parent-domain"),
    pytest.param("https://localhost.evil.com", id="localhost.evil.com"),
    pytest.param("https://app.localhost.evil.com:8443", id="suffix-evil"),
    pytest.param("null", id="null"),
    pytest.param(TLS_ORIGIN + "/", id="trailing-slash"),
    pytest.param(TLS_ORIGIN + "/auth", id="path-appended"),
    pytest.param("HTTPS://APP.LOCALHOST:8443", id="upper-case"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("origin", ORIGIN_MATRIX)
async def test_R10_origin_not_allowed(tls_reg: Registration, origin: str) -> None:
    await tls_reg.refused(origin=origin)


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"drop_client_data": ["origin"]}, id="missing"),
        pytest.param({"extra_client_data": {"origin": ["https://app.localhost:8443"]}}, id="not-string"),
    ],
)
async def test_R10_origin_missing_or_not_string(tls_reg: Registration, knobs: dict[str, Any]) -> None:
    await tls_reg.refused(**knobs)


async def test_R10_tls_origin_accepted(tls_reg: Registration) -> None:
    await tls_reg.accepted()


async def test_R10_origin_other_allowed_origin_than_the_ceremony_began_at(tmp_path: Path) -> None:
    """V-17: with several allowed origins, the response must come from the origin that asked."""
    ctx, http = await custom(tmp_path, origins=["http://localhost:8000", "http://localhost:8001"])
    async with http:
        await Registration(http, ctx).refused(origin="http://localhost:8001")
        await Registration(http, ctx).accepted(origin="http://localhost:8000")
    ctx.db.dispose()


@pytest.mark.parametrize("value", [True, "true", 1], ids=["true", "string-true", "one"])
async def test_R11_cross_origin_refused(reg: Registration, value: Any) -> None:
    await reg.refused(cross_origin=None, extra_client_data={"crossOrigin": value})


@pytest.mark.parametrize("cross_origin", [False, None], ids=["false", "absent"])
async def test_R11_cross_origin_false_or_absent_accepted(
    reg: Registration, cross_origin: bool | None
) -> None:
    await reg.accepted(cross_origin=cross_origin)


@pytest.mark.parametrize("top_origin", [ORIGIN, "https://example.com"], ids=["same", "other"])
async def test_R12_top_origin_refused(reg: Registration, top_origin: str) -> None:
    await reg.refused(top_origin=top_origin)


async def test_R13_client_data_modified_after_signing(reg: Registration) -> None:
    """Packed self attestation signs SHA-256(clientDataJSON): whitespace added afterwards breaks it."""

    def spaced(data: dict[str, Any]) -> bytes:
        return json.dumps(data, indent=1).encode()

    await reg.refused(fmt="packed", mutate=_client_data_bytes(spaced))


# --- R-14..R-19: attestation object, authData


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def _auth_data(edit: Any) -> Mutation:
    def change(decoded: dict[str, Any]) -> None:
        decoded["authData"] = edit(decoded["authData"])

    return edit_attestation(change)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(edit_attestation(lambda a: [a["fmt"], a["attStmt"], a["authData"]]), id="not-a-map"),
        pytest.param(edit_attestation(lambda a: _without(a, "fmt")), id="fmt-missing"),
        pytest.param(edit_attestation(lambda a: a.update(fmt=1)), id="fmt-not-text"),
        pytest.param(edit_attestation(lambda a: _without(a, "attStmt")), id="attStmt-missing"),
        pytest.param(edit_attestation(lambda a: a.update(attStmt=[1])), id="attStmt-not-map"),
        pytest.param(edit_attestation(lambda a: _without(a, "authData")), id="authData-missing"),
        pytest.param(edit_attestation(lambda a: a.update(authData="text")), id="authData-not-bytes"),
        pytest.param(edit_attestation(lambda a: a.update(authData=b"")), id="authData-empty"),
        pytest.param(
            put("response", "attestationObject", value=b64url_encode(b"\xff\x00garbage")), id="not-cbor"
        ),
    ],
)
async def test_R14_attestation_object_malformed(reg: Registration, mutate: Mutation) -> None:
    await reg.refused(mutate=mutate)


@pytest.mark.parametrize(
    ("knobs", "mutate"),
    [
        pytest.param({}, _auth_data(lambda data: data[:36]), id="shorter-than-37"),
        pytest.param({"attested_data_without_at_flag": True}, None, id="AT-clear-with-attested-data"),
        pytest.param(
            {"at": False, "omit_attested_credential_data": True}, None, id="AT-clear-no-attested-data"
        ),
        pytest.param({"omit_attested_credential_data": True}, None, id="AT-set-no-attested-data"),
        pytest.param({"auth_data_trailing": b"\x00"}, None, id="trailing-bytes"),
        pytest.param({"ed": True}, None, id="ED-without-extensions"),
        pytest.param({"extensions": {"credProtect": 1}, "ed": False}, None, id="extensions-without-ED"),
    ],
)
async def test_R15_authenticator_data_malformed(
    reg: Registration, knobs: dict[str, Any], mutate: Mutation | None
) -> None:
    await reg.refused(mutate=mutate, **knobs)


@pytest.mark.parametrize("rp_id", ["localhost:8000", "example.com", ORIGIN, "LOCALHOST", "sub.localhost"])
async def test_R16_rp_id_hash_wrong(reg: Registration, rp_id: str) -> None:
    await reg.refused(rp_id=rp_id)


async def test_R17_user_not_present(reg: Registration) -> None:
    await reg.refused(up=False)


async def test_R18_uv_required_by_policy_and_missing(tmp_path: Path) -> None:
    """V-05/V-08: even when the client is told (or pretends) `discouraged`, the server requires UV."""
    ctx, http = await custom(tmp_path, user_verification="required")
    async with http:
        reg = Registration(http, ctx)
        options = await reg.begin()
        assert options["publicKey"]["authenticatorSelection"]["userVerification"] == "required"
        options["publicKey"]["authenticatorSelection"]["userVerification"] = "discouraged"
        before = db_state(ctx)
        assert_refused(await http.post(REGISTER, json=reg.create(options, uv=False)), "ceremony_failed")
        assert db_state(ctx) == before
        assert not challenge_stored(ctx, options)
        await reg.refused(uv=False)
        await reg.accepted(uv=True)
    ctx.db.dispose()


async def test_R18_uv_not_required_accepts_uv_false(reg: Registration) -> None:
    credential = await reg.accepted(uv=False)
    assert credential_row(reg.ctx, b64url_decode(credential["rawId"]))["uv_initialized"] is False


async def test_R19_backup_state_without_backup_eligible(reg: Registration) -> None:
    await reg.refused(be=False, bs=True)


# --- R-20..R-23: keys and formats


async def test_R20_algorithm_not_offered(tmp_path: Path) -> None:
    """V-08: an algorithm outside the configured list is refused even when the client ignores the offer."""
    ctx, http = await custom(tmp_path, algorithms=["ES256"])
    async with http:
        reg = Registration(http, ctx)
        options = await reg.begin()
        assert [p["alg"] for p in options["publicKey"]["pubKeyCredParams"]] == [-7]
        reg.authenticator = SoftAuthenticator("EdDSA")
        await reg.refused(ignore_pub_key_cred_params=True)
    ctx.db.dispose()


@pytest.mark.parametrize("alg", [-35, -36, -37, -65535, 1], ids=["ES384", "ES512", "PS256", "RS1", "A128GCM"])
async def test_R20_algorithm_label_not_offered(reg: Registration, alg: int) -> None:
    await reg.refused(cose_alg=alg, ignore_pub_key_cred_params=True)


def _cose(**entries: Any) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    base: dict[int, Any] = cbor2.loads(cose_public_key(key))
    for label, value in entries.items():
        number = int(label.replace("m", "-"))
        if value is None:
            base.pop(number, None)
        else:
            base[number] = value
    return cbor2.dumps(base)


def _okp(x: bytes) -> bytes:
    return cbor2.dumps({1: 1, 3: -8, -1: 6, -2: x})


@pytest.mark.parametrize(
    "public_key",
    [
        pytest.param(_cose(**{"3": None}), id="no-alg"),
        pytest.param(_cose(**{"1": None}), id="no-kty"),
        pytest.param(_cose(**{"3": -8}), id="EC2-key-with-EdDSA-alg"),
        pytest.param(_cose(**{"1": 3}), id="RSA-kty-with-ES256-alg"),
        pytest.param(_cose(**{"m3": bytes(32)}), id="EC2-point-not-on-curve"),
        pytest.param(_cose(**{"m1": 2}), id="EC2-wrong-curve-P384"),
        pytest.param(_cose(**{"m1": 99}), id="EC2-unknown-curve"),
        pytest.param(_cose(**{"m2": None}), id="EC2-no-x"),
        pytest.param(cbor2.dumps({1: 3, 3: -257, -1: b"\x01" * 256}), id="RSA-no-e"),
        pytest.param(cbor2.dumps({1: 3, 3: -257, -2: b"\x01\x00\x01"}), id="RSA-no-n"),
        pytest.param(_okp(bytes(31)), id="OKP-short"),
        pytest.param(_okp(bytes(33)), id="OKP-long"),
        pytest.param(cbor2.dumps({1: 1, 3: -8, -1: 7, -2: bytes(32)}), id="OKP-X25519-curve"),
        pytest.param(cbor2.dumps([1, 2, 3]), id="not-a-map"),
    ],
)
async def test_R21_credential_public_key_malformed(reg: Registration, public_key: bytes) -> None:
    await reg.refused(credential_public_key=public_key, ignore_pub_key_cred_params=True)


@pytest.mark.parametrize("fmt", ["Packed", "NONE", "foo", "", "fido-u2f "])
async def test_R22_attestation_format_unsupported(reg: Registration, fmt: str) -> None:
    await reg.refused(fmt=fmt)


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"fmt": "packed", "tamper_signature": True}, id="packed-self-bad-signature"),
        pytest.param(
            {"fmt": "packed", "sign_with": ec.generate_private_key(ec.SECP256R1())},
            id="packed-self-other-key",
        ),
        pytest.param(
            {"fmt": "packed", "att_stmt": {"alg": -257, "sig": b"\x30\x00"}}, id="packed-self-alg-mismatch"
        ),
        pytest.param({"fmt": "packed", "att_stmt": {}}, id="packed-empty-attStmt"),
        pytest.param({"fmt": "packed", "att_stmt": {"alg": "ES256", "sig": b"x"}}, id="packed-alg-not-int"),
        pytest.param({"fmt": "packed", "att_stmt": {"alg": -7}}, id="packed-sig-missing"),
        pytest.param({"fmt": "packed", "att_stmt": {"alg": -7, "sig": b""}}, id="packed-sig-empty"),
        pytest.param(
            {"fmt": "packed", "att_stmt": {"alg": -7, "sig": b"x", "x5c": []}}, id="packed-x5c-empty"
        ),
        pytest.param({"fmt": "none", "att_stmt": {"alg": -7, "sig": b"\x30\x00"}}, id="none-with-statement"),
    ],
)
async def test_R23_attestation_statement_fails(reg: Registration, knobs: dict[str, Any]) -> None:
    await reg.refused(**knobs)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
async def test_R23_packed_self_attestation_accepted(reg: Registration, alg: str) -> None:
    """F-PK-6 positive control: a valid packed self attestation is accepted for each algorithm."""
    reg.authenticator = SoftAuthenticator(alg, private_key=rsa_key() if alg == "RS256" else None)  # type: ignore[arg-type]
    credential = await reg.accepted(fmt="packed")
    assert credential_row(reg.ctx, b64url_decode(credential["rawId"]))["attestation_format"] == "packed"


# --- R-27..R-31: the record


async def test_R27_credential_id_of_1023_bytes_accepted(reg: Registration) -> None:
    credential = await reg.accepted(credential_id_length=1023)
    assert len(credential_row(reg.ctx, b64url_decode(credential["rawId"]))["credential_id"]) == 1023


async def test_R27_credential_id_of_1024_bytes_refused(reg: Registration) -> None:
    await reg.refused(credential_id_length=1024)


async def test_R31_verify_holds_no_write_lock(reg: Registration, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attestation is verified with no transaction open: on SQLite, whose one write lock serves the
    whole database, no other worker waits for it."""
    if not reg.ctx.db.is_sqlite:
        pytest.skip("SQLite's database-wide write lock")
    taken = write_lock_seen(monkeypatch, registration, "finish_registration", reg.ctx)
    await reg.accepted()
    assert taken == [True]


async def test_R28_credential_id_registered_to_another_account(reg: Registration) -> None:
    """V-26: re-registering a victim's credential id into a new account is refused; the victim's
    record (public key, owner, counter) is unchanged."""
    victim = await reg.accepted()
    victim_id = b64url_decode(victim["rawId"])
    victim_record = credential_row(reg.ctx, victim_id)
    response = await reg.refused("credential_exists", credential_id=victim_id)
    assert "already registered" in response.json()["error"]
    assert credential_row(reg.ctx, victim_id) == victim_record


async def test_R28_credential_id_registered_again_to_the_same_account(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    """V-08: a client ignoring excludeCredentials cannot register the same credential twice."""
    browser = Passkeys(client)
    assert (await browser.register()).status_code == 200
    existing = browser.authenticator.last_credential.credential_id
    record = credential_row(ctx, existing)
    begin = await browser.post("/auth/credentials/begin")
    excluded = [b64url_decode(item["id"]) for item in begin.json()["publicKey"]["excludeCredentials"]]
    assert excluded == [existing]
    before = db_state(ctx)
    credential = browser.authenticator.create(
        begin.json(), origin=ORIGIN, credential_id=existing, ignore_exclude_credentials=True
    )
    assert_refused(await browser.post("/auth/credentials/finish", credential), "credential_exists")
    assert db_state(ctx) == before
    assert credential_row(ctx, existing) == record
    assert not challenge_stored(ctx, begin.json())


async def test_R29_record_captures_the_verified_values(reg: Registration) -> None:
    reg.authenticator = SoftAuthenticator(backup_eligible=True, backup_state=True)
    options = await reg.begin()
    credential = reg.create(
        options, sign_count=7, transports=["hybrid", "internal", "bogus"], user_handle=b"client"
    )
    assert (await reg.http.post(REGISTER, json=credential)).status_code == 200
    held = reg.authenticator.last_credential
    row = credential_row(reg.ctx, held.credential_id)
    assert row["public_key"] == held.public_key_cose
    assert row["algorithm"] == -7
    assert row["sign_count"] == 7
    assert (row["backup_eligible"], row["backup_state"], row["uv_initialized"]) == (True, True, True)
    assert row["transports"].split(",") == ["hybrid", "internal"]
    assert row["attestation_format"] == "none"
    user = reg.ctx.db.transact(_user_of(row["user_id"]), write=False)
    assert user.user_handle == b64url_decode(
        options["publicKey"]["user"]["id"]
    )  # the server's, not the client's


def _user_of(user_id: str) -> Any:
    from passgate.store import users

    return lambda connection: users.get(connection, user_id)


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param(
            {"client_extension_results": {"unsolicited": {"x": 1}, "credProps": {"rk": True}}}, id="client"
        ),
        pytest.param({"extensions": {"credProtect": 2, "unknownExt": b"\x01"}}, id="authenticator"),
    ],
)
async def test_R30_unsolicited_extension_outputs_ignored(reg: Registration, knobs: dict[str, Any]) -> None:
    await reg.accepted(**knobs)


async def test_R31_failed_step_burns_the_challenge_and_writes_nothing(reg: Registration) -> None:
    options = await reg.begin()
    before = db_state(reg.ctx)
    assert challenge_stored(reg.ctx, options)
    assert_refused(await reg.http.post(REGISTER, json=reg.create(options, up=False)), "ceremony_failed")
    assert not challenge_stored(reg.ctx, options)
    honest = reg.create(options)
    assert_refused(await reg.http.post(REGISTER, json=honest), "ceremony_failed")
    assert db_state(reg.ctx) == before


async def test_R32_creation_options(reg: Registration) -> None:
    name = unique_name("alice")
    first, second = await reg.begin(name), await reg.begin(unique_name())
    options = first["publicKey"]
    challenge = b64url_decode(options["challenge"])
    assert len(challenge) >= 16
    assert challenge != b64url_decode(second["publicKey"]["challenge"])
    assert options["rp"]["id"] == "localhost"
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert options["excludeCredentials"] == []
    assert options["user"]["name"] == name


async def test_R32_add_passkey_options_exclude_existing_credentials(client: httpx.AsyncClient) -> None:
    browser = Passkeys(client)
    assert (await browser.register()).status_code == 200
    assert (await browser.add_passkey(SoftAuthenticator("EdDSA"))).status_code == 200
    options = (await browser.post("/auth/credentials/begin")).json()["publicKey"]
    account = (await browser.post("/auth/user-info")).json()
    assert {item["id"] for item in options["excludeCredentials"]} == {
        item["credential_id"] for item in account["credentials"]
    }
    assert len(options["excludeCredentials"]) == 2


async def test_N01_user_handle_random_opaque_short(reg: Registration) -> None:
    name = unique_name("bob@example.com")
    handles = [b64url_decode((await reg.begin(name))["publicKey"]["user"]["id"]) for _ in range(3)]
    assert len(set(handles)) == 3, "the user handle is derived from the name"
    for handle in handles:
        assert 16 <= len(handle) <= 64
        assert name.encode() not in handle and b"bob" not in handle


# --- V-24: adding a passkey needs a session


async def test_V24_adding_a_passkey_needs_a_session(client: httpx.AsyncClient, ctx: Context) -> None:
    browser = Passkeys(client)
    assert (await browser.register()).status_code == 200
    options = (await browser.post("/auth/credentials/begin")).json()
    client.cookies.clear()
    before = db_state(ctx)
    assert_refused(await browser.post("/auth/credentials/begin"), "not_authenticated", 401)
    credential = SoftAuthenticator().create(options, origin=ORIGIN)
    assert_refused(await browser.post("/auth/credentials/finish", credential), "not_authenticated", 401)
    assert db_state(ctx) == before


async def test_R09_add_passkey_challenge_of_another_session(client: httpx.AsyncClient, ctx: Context) -> None:
    """A challenge issued to one signed-in session cannot add a passkey to another account."""
    alice = Passkeys(client)
    assert (await alice.register()).status_code == 200
    options = (await alice.post("/auth/credentials/begin")).json()
    client.cookies.clear()
    mallory = Passkeys(client)
    assert (await mallory.register()).status_code == 200
    before = db_state(ctx)
    credential = SoftAuthenticator().create(options, origin=ORIGIN)
    assert_refused(await mallory.post("/auth/credentials/finish", credential), "ceremony_mismatch")
    assert db_state(ctx) == before
    assert not challenge_stored(ctx, options)
