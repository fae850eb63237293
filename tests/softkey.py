"""A software WebAuthn authenticator (plus the browser half of the client) for tests.

``SoftAuthenticator`` takes the JSON options a relying party sends to the browser
(``PublicKeyCredentialCreationOptionsJSON`` / ``PublicKeyCredentialRequestOptionsJSON``,
optionally wrapped as ``{"publicKey": {...}}``) and returns exactly what
``credential.toJSON()`` would give the page: real keys, real signatures, real CBOR.

Every keyword knob of :meth:`SoftAuthenticator.create` / :meth:`SoftAuthenticator.get`
defaults to honest behaviour and changes only the one thing it names, so a negative
test can break a single relying-party check of WebAuthn L3 §7.1 (registration) or
§7.2 (authentication) while everything else stays valid.  In particular signatures
are always computed over the bytes actually sent (after every knob was applied),
unless a signature knob says otherwise.

Flags bits: UP=0x01, UV=0x04, BE=0x08, BS=0x10, AT=0x40, ED=0x80.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

__all__ = [
    "AT",
    "BE",
    "BS",
    "ED",
    "UNSET",
    "UP",
    "UV",
    "Alg",
    "PrivateKey",
    "SoftAuthenticator",
    "SoftCredential",
    "SoftKeyError",
    "alg_of_key",
    "b64url_decode",
    "b64url_encode",
    "cose_alg_id",
    "cose_public_key",
    "generate_key",
    "rsa_key",
    "sign",
    "spki_public_key",
]

Alg: TypeAlias = Literal["ES256", "EdDSA", "RS256"]
PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

UP: Final = 0x01
UV: Final = 0x04
BE: Final = 0x08
BS: Final = 0x10
AT: Final = 0x40
ED: Final = 0x80

_BOM: Final = b"\xef\xbb\xbf"


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""Sentinel: "knob not given" where ``None`` already means something."""


class SoftKeyError(Exception):
    """What the browser would surface as a DOMException (InvalidStateError,
    NotAllowedError, NotSupportedError): the ceremony was refused client-side."""


# --------------------------------------------------------------------------- helpers


def b64url_encode(data: bytes) -> str:
    """base64url without padding (the WebAuthn JSON encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str) -> bytes:
    """Decode base64url, with or without padding."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def cose_alg_id(alg: Alg) -> int:
    """COSE algorithm identifier of ``alg``."""
    if alg == "ES256":
        return -7
    if alg == "EdDSA":
        return -8
    return -257


def generate_key(alg: Alg) -> PrivateKey:
    """A fresh private key for ``alg`` (RS256: 2048-bit, e=65537; ~50 ms)."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def rsa_key(slot: int = 0) -> rsa.RSAPrivateKey:
    """A process-wide cached 2048-bit RSA key; distinct slots give distinct keys.

    RSA key generation is slow; pass ``rsa_key()`` / ``rsa_key(1)`` ... as
    ``private_key=`` to keep RS256 tests fast.  Do not reuse one slot for two
    credentials that a test needs to tell apart by key.
    """
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def alg_of_key(key: PrivateKey) -> Alg:
    """The :data:`Alg` a private key signs with (raises for unsupported keys)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"unsupported EC curve {key.curve.name}; ES256 needs P-256")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    raise TypeError(f"unsupported private key type {type(key).__name__}")


def sign(key: PrivateKey, data: bytes) -> bytes:
    """Sign like an authenticator: ES256 DER ECDSA/SHA-256, Ed25519, RS256 PKCS#1 v1.5."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _uint_be(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def cose_public_key(key: PrivateKey, *, alg: int | None = None) -> bytes:
    """CBOR (CTAP2 canonical) COSE_Key of ``key``'s public half.

    ``alg`` overrides the COSE algorithm label (3) without changing the key material.
    """
    cose: dict[int, int | bytes]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        cose = {
            1: 2,
            3: -7 if alg is None else alg,
            -1: 1,
            -2: numbers.x.to_bytes(size, "big"),
            -3: numbers.y.to_bytes(size, "big"),
        }
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        cose = {1: 1, 3: -8 if alg is None else alg, -1: 6, -2: raw}
    else:
        rsa_numbers = key.public_key().public_numbers()
        cose = {
            1: 3,
            3: -257 if alg is None else alg,
            -1: _uint_be(rsa_numbers.n),
            -2: _uint_be(rsa_numbers.e),
        }
    return cbor2.dumps(cose, canonical=True)


def spki_public_key(key: PrivateKey) -> bytes:
    """DER SubjectPublicKeyInfo of ``key``'s public half (``response.publicKey``)."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _unwrap(options: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    if isinstance(options, str | bytes):
        loaded = json.loads(options)
        if not isinstance(loaded, dict):
            raise TypeError("options JSON must be an object")
        options = loaded
    inner = options.get("publicKey")
    if isinstance(inner, Mapping):
        return inner
    return options


def _origin_host(origin: str) -> str:
    return urlsplit(origin).hostname or ""


def _normalise_challenge(challenge: str) -> str:
    # The browser decodes the JSON challenge to bytes and re-encodes it.
    return b64url_encode(b64url_decode(challenge))


def _client_data(
    *,
    ceremony_type: str,
    challenge: str,
    origin: str,
    cross_origin: bool | None,
    top_origin: str | None,
    extra: Mapping[str, Any] | None,
    drop: Iterable[str],
    verbatim: bytes | None,
    bom: bool,
) -> bytes:
    if verbatim is not None:
        data = verbatim
    else:
        # Same member order as the browser's CollectedClientData serialisation.
        cd: dict[str, Any] = {"type": ceremony_type, "challenge": challenge, "origin": origin}
        if cross_origin is not None:
            cd["crossOrigin"] = cross_origin
        if top_origin is not None:
            cd["topOrigin"] = top_origin
        if extra:
            cd.update(extra)
        for key in drop:
            cd.pop(key, None)
        data = json.dumps(cd, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return _BOM + data if bom else data


def _flags(*, up: bool, uv: bool, be: bool, bs: bool, at: bool, ed: bool) -> int:
    return (
        (UP if up else 0)
        | (UV if uv else 0)
        | (BE if be else 0)
        | (BS if bs else 0)
        | (AT if at else 0)
        | (ED if ed else 0)
    )


def _pick(override: bool | None, default: bool) -> bool:
    return default if override is None else override


# --------------------------------------------------------------------------- model


@dataclass
class SoftCredential:
    """One credential held by a :class:`SoftAuthenticator` (mutate freely in tests)."""

    credential_id: bytes
    private_key: PrivateKey
    alg: Alg
    rp_id: str
    user_handle: bytes
    sign_count: int
    backup_eligible: bool
    backup_state: bool

    @property
    def id_b64(self) -> str:
        """The credential ID as base64url (the JSON ``id``)."""
        return b64url_encode(self.credential_id)

    @property
    def cose_alg(self) -> int:
        """COSE algorithm identifier (-7, -8 or -257)."""
        return cose_alg_id(self.alg)

    @property
    def public_key_cose(self) -> bytes:
        """The honest CBOR COSE_Key (what a server stores as the credential public key)."""
        return cose_public_key(self.private_key)

    @property
    def public_key_spki(self) -> bytes:
        """DER SubjectPublicKeyInfo."""
        return spki_public_key(self.private_key)


class SoftAuthenticator:
    """A platform authenticator + browser, producing ``toJSON()``-shaped responses.

    ``private_key`` (optional) is used for the first credential created without a
    per-call ``private_key=`` knob; later credentials get fresh keys.
    ``counter_step=0`` makes an authenticator that always reports sign count 0.
    """

    credentials: dict[bytes, SoftCredential]

    def __init__(
        self,
        alg: Alg = "ES256",
        *,
        aaguid: bytes = bytes(16),
        backup_eligible: bool = False,
        backup_state: bool = False,
        user_verified: bool = True,
        counter_step: int = 1,
        private_key: PrivateKey | None = None,
    ) -> None:
        if len(aaguid) != 16:
            raise ValueError("aaguid must be 16 bytes")
        if counter_step < 0:
            raise ValueError("counter_step must be >= 0")
        if private_key is not None and alg_of_key(private_key) != alg:
            raise ValueError(f"private_key is {alg_of_key(private_key)}, authenticator is {alg}")
        self.alg: Alg = alg
        self.aaguid = aaguid
        self.backup_eligible = backup_eligible
        self.backup_state = backup_state
        self.user_verified = user_verified
        self.counter_step = counter_step
        self.credentials = {}
        self._premade_key: PrivateKey | None = private_key

    # ------------------------------------------------------------------ helpers

    def _new_key(self, knob: PrivateKey | None) -> PrivateKey:
        if knob is not None:
            return knob
        if self._premade_key is not None:
            key, self._premade_key = self._premade_key, None
            return key
        return generate_key(self.alg)

    def _signature(
        self,
        default_key: PrivateKey,
        data: bytes,
        *,
        sign_with: SoftCredential | PrivateKey | None,
        signature: bytes | None,
        tamper_signature: bool,
    ) -> bytes:
        if signature is not None:
            sig = signature
        else:
            if sign_with is None:
                key = default_key
            elif isinstance(sign_with, SoftCredential):
                key = sign_with.private_key
            else:
                key = sign_with
            sig = sign(key, data)
        if tamper_signature and sig:
            # Flip the lowest bit of the last byte: the DER framing of an ECDSA signature
            # stays well-formed, only the value is wrong.
            sig = sig[:-1] + bytes([sig[-1] ^ 0x01])
        return sig

    @property
    def last_credential(self) -> SoftCredential:
        """The most recently created credential."""
        if not self.credentials:
            raise SoftKeyError("no credentials")
        return next(reversed(self.credentials.values()))

    # ------------------------------------------------------------------ create

    def create(
        self,
        options: Mapping[str, Any] | str | bytes,
        *,
        origin: str,
        # --- collected client data
        type: str = "webauthn.create",  # C.type
        challenge: str | None = None,
        cross_origin: bool | None = False,
        top_origin: str | None = None,
        extra_client_data: Mapping[str, Any] | None = None,
        drop_client_data: Iterable[str] = (),
        client_data_json: bytes | None = None,
        client_data_bom: bool = False,
        # --- authenticator data
        rp_id: str | None = None,
        up: bool | None = None,
        uv: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        at: bool | None = None,
        ed: bool | None = None,
        flags: int | None = None,
        sign_count: int | None = None,
        aaguid: bytes | None = None,
        extensions: Mapping[Any, Any] | None = None,
        auth_data_trailing: bytes = b"",
        attested_data_without_at_flag: bool = False,
        omit_attested_credential_data: bool = False,
        # --- the credential
        credential_id: bytes | None = None,
        credential_id_length: int = 32,
        private_key: PrivateKey | None = None,
        user_handle: bytes | None = None,
        cose_alg: int | None = None,
        credential_public_key: bytes | None = None,
        ignore_exclude_credentials: bool = False,
        ignore_pub_key_cred_params: bool = False,
        # --- attestation
        fmt: str = "none",
        att_stmt: Mapping[str, Any] | None = None,
        # --- signature (only used by fmt="packed" self attestation)
        tamper_signature: bool = False,
        sign_with: SoftCredential | PrivateKey | None = None,
        signature: bytes | None = None,
        # --- the JSON envelope
        id_override: str | None = None,
        raw_id_override: bytes | str | None = None,
        credential_type: str = "public-key",
        transports: Sequence[str] | None = ("internal",),
        authenticator_attachment: str | None = "platform",
        client_extension_results: Mapping[str, Any] | None = None,
        include_public_key: bool = True,
    ) -> dict[str, Any]:
        """``navigator.credentials.create()`` + ``credential.toJSON()``.

        Client-side checks (raise :class:`SoftKeyError`): one of our credentials for this
        RP is in ``excludeCredentials`` (unless ``ignore_exclude_credentials``); ``self.alg``
        is not offered in ``pubKeyCredParams`` (unless ``ignore_pub_key_cred_params``;
        an empty list means ES256 + RS256, as in the spec).

        Knobs beyond the obvious:

        * ``rp_id`` only changes the rpIdHash; the credential is stored under the
          ceremony's real RP ID (``rp.id``, else the origin's host).
        * ``be`` / ``bs`` / ``sign_count`` / ``user_handle`` are also stored on the
          credential, so later assertions stay consistent with what was registered.
        * ``at`` / ``ed`` / ``flags`` override the AT / ED bits / the whole flags byte;
          ``attested_data_without_at_flag`` is ``at=False``; ``omit_attested_credential_data``
          leaves the attested credential data out (AT still set).
        * ``extensions`` CBOR-encodes an extensions map after the attested data and sets ED.
        * ``cose_alg`` changes the alg label (3) in the COSE key (and ``publicKeyAlgorithm``),
          not the key; ``credential_public_key`` replaces the COSE key bytes verbatim.
        * ``fmt="packed"`` with no ``att_stmt`` produces a self attestation
          ``{"alg", "sig"}`` signed by the credential key (signature knobs apply to it);
          any other ``fmt`` defaults to ``att_stmt={}``.
        * ``raw_id_override``: bytes are base64url-encoded, a str is used verbatim.
        * ``transports`` / ``authenticator_attachment`` = None leave those members out.
        """
        opts = _unwrap(options)
        rp = opts.get("rp") or {}
        real_rp_id: str = rp.get("id") or _origin_host(origin)

        # pubKeyCredParams: the first entry matching our algorithm.
        alg = self.alg if private_key is None else alg_of_key(private_key)
        wanted = cose_alg_id(alg)
        params = opts.get("pubKeyCredParams") or [
            {"type": "public-key", "alg": -7},
            {"type": "public-key", "alg": -257},
        ]
        offered = any(p.get("type") == "public-key" and p.get("alg") == wanted for p in params)
        if not offered and not ignore_pub_key_cred_params:
            raise SoftKeyError(f"NotSupportedError: {alg} ({wanted}) not in pubKeyCredParams")

        # excludeCredentials.
        if not ignore_exclude_credentials:
            for desc in opts.get("excludeCredentials") or []:
                held = self.credentials.get(b64url_decode(desc["id"]))
                if held is not None and held.rp_id == real_rp_id:
                    raise SoftKeyError("InvalidStateError: credential is in excludeCredentials")

        key = self._new_key(private_key)
        cred_id = os.urandom(credential_id_length) if credential_id is None else credential_id
        handle = b64url_decode(opts["user"]["id"]) if user_handle is None else user_handle
        be_flag = _pick(be, self.backup_eligible)
        bs_flag = _pick(bs, self.backup_state)
        count = 0 if sign_count is None else sign_count
        cred = SoftCredential(
            credential_id=cred_id,
            private_key=key,
            alg=alg,
            rp_id=real_rp_id,
            user_handle=handle,
            sign_count=count,
            backup_eligible=be_flag,
            backup_state=bs_flag,
        )

        client_data = _client_data(
            ceremony_type=type,
            challenge=_normalise_challenge(opts["challenge"]) if challenge is None else challenge,
            origin=origin,
            cross_origin=cross_origin,
            top_origin=top_origin,
            extra=extra_client_data,
            drop=drop_client_data,
            verbatim=client_data_json,
            bom=client_data_bom,
        )

        cose = credential_public_key
        if cose is None:
            cose = cose_public_key(key, alg=cose_alg)
        attested = b""
        if not omit_attested_credential_data:
            attested = (
                (self.aaguid if aaguid is None else aaguid) + struct.pack(">H", len(cred_id)) + cred_id + cose
            )
        ext = b"" if extensions is None else cbor2.dumps(dict(extensions), canonical=True)
        flag_byte = _flags(
            up=_pick(up, True),
            uv=_pick(uv, self.user_verified),
            be=be_flag,
            bs=bs_flag,
            at=_pick(at, not attested_data_without_at_flag),
            ed=_pick(ed, extensions is not None),
        )
        auth_data = (
            hashlib.sha256((real_rp_id if rp_id is None else rp_id).encode("utf-8")).digest()
            + bytes([flag_byte if flags is None else flags])
            + struct.pack(">I", count)
            + attested
            + ext
            + auth_data_trailing
        )

        statement: Mapping[str, Any]
        if att_stmt is not None:
            statement = att_stmt
        elif fmt == "packed":
            sig = self._signature(
                key,
                auth_data + hashlib.sha256(client_data).digest(),
                sign_with=sign_with,
                signature=signature,
                tamper_signature=tamper_signature,
            )
            statement = {"alg": cose_alg_id(alg), "sig": sig}
        else:
            statement = {}
        attestation_object = cbor2.dumps(
            {"fmt": fmt, "attStmt": dict(statement), "authData": auth_data}, canonical=True
        )

        self.credentials.pop(cred_id, None)  # a re-used ID becomes the most recent credential
        self.credentials[cred_id] = cred

        response: dict[str, Any] = {
            "clientDataJSON": b64url_encode(client_data),
            "authenticatorData": b64url_encode(auth_data),
        }
        if transports is not None:
            response["transports"] = list(transports)
        if include_public_key:
            response["publicKey"] = b64url_encode(spki_public_key(key))
        response["publicKeyAlgorithm"] = wanted if cose_alg is None else cose_alg
        response["attestationObject"] = b64url_encode(attestation_object)
        return self._envelope(
            cred_id,
            response,
            id_override=id_override,
            raw_id_override=raw_id_override,
            credential_type=credential_type,
            authenticator_attachment=authenticator_attachment,
            client_extension_results=client_extension_results,
        )

    # ------------------------------------------------------------------ get

    def _select(self, opts: Mapping[str, Any], rp_id: str, credential_id: bytes | None) -> SoftCredential:
        if credential_id is not None:
            try:
                return self.credentials[credential_id]
            except KeyError:
                raise SoftKeyError("NotAllowedError: unknown credential_id") from None
        allowed = opts.get("allowCredentials") or []
        if allowed:
            for desc in allowed:
                held = self.credentials.get(b64url_decode(desc["id"]))
                if held is not None and held.rp_id == rp_id:
                    return held
            raise SoftKeyError("NotAllowedError: no allowCredentials entry is ours")
        for cred in reversed(self.credentials.values()):
            if cred.rp_id == rp_id:
                return cred
        raise SoftKeyError(f"NotAllowedError: no credential for RP {rp_id!r}")

    def get(
        self,
        options: Mapping[str, Any] | str | bytes,
        *,
        origin: str,
        credential_id: bytes | None = None,
        # --- collected client data
        type: str = "webauthn.get",  # C.type
        challenge: str | None = None,
        cross_origin: bool | None = False,
        top_origin: str | None = None,
        extra_client_data: Mapping[str, Any] | None = None,
        drop_client_data: Iterable[str] = (),
        client_data_json: bytes | None = None,
        client_data_bom: bool = False,
        # --- authenticator data
        rp_id: str | None = None,
        up: bool | None = None,
        uv: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        at: bool | None = None,
        ed: bool | None = None,
        flags: int | None = None,
        sign_count: int | None = None,
        extensions: Mapping[Any, Any] | None = None,
        auth_data_trailing: bytes = b"",
        # --- credential / user handle
        user_handle: bytes | _Unset | None = UNSET,
        # --- signature
        tamper_signature: bool = False,
        sign_with: SoftCredential | PrivateKey | None = None,
        signature: bytes | None = None,
        # --- the JSON envelope
        id_override: str | None = None,
        raw_id_override: bytes | str | None = None,
        credential_type: str = "public-key",
        authenticator_attachment: str | None = "platform",
        client_extension_results: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``navigator.credentials.get()`` + ``credential.toJSON()``.

        Credential choice: ``credential_id`` if given (any RP), else the first
        ``allowCredentials`` entry we hold for this RP, else (empty list) the most
        recently created credential for the RP ID (``rpId``, else the origin's host).
        Raises :class:`SoftKeyError` when nothing matches.

        The stored counter grows by ``counter_step`` (``sign_count`` sets it explicitly,
        and is stored).  BE/BS default to the credential's stored values; the ``be``/``bs``
        knobs only change this response (mutate the credential to persist a change).
        ``user_handle``: bytes to send; ``None`` or ``b""`` omits the member.
        ``extensions`` appends a CBOR extensions map and sets ED.
        """
        opts = _unwrap(options)
        real_rp_id: str = opts.get("rpId") or _origin_host(origin)
        cred = self._select(opts, real_rp_id, credential_id)

        count = cred.sign_count + self.counter_step if sign_count is None else sign_count

        client_data = _client_data(
            ceremony_type=type,
            challenge=_normalise_challenge(opts["challenge"]) if challenge is None else challenge,
            origin=origin,
            cross_origin=cross_origin,
            top_origin=top_origin,
            extra=extra_client_data,
            drop=drop_client_data,
            verbatim=client_data_json,
            bom=client_data_bom,
        )

        ext = b"" if extensions is None else cbor2.dumps(dict(extensions), canonical=True)
        flag_byte = _flags(
            up=_pick(up, True),
            uv=_pick(uv, self.user_verified),
            be=_pick(be, cred.backup_eligible),
            bs=_pick(bs, cred.backup_state),
            at=_pick(at, False),
            ed=_pick(ed, extensions is not None),
        )
        auth_data = (
            hashlib.sha256((real_rp_id if rp_id is None else rp_id).encode("utf-8")).digest()
            + bytes([flag_byte if flags is None else flags])
            + struct.pack(">I", count)
            + ext
            + auth_data_trailing
        )
        sig = self._signature(
            cred.private_key,
            auth_data + hashlib.sha256(client_data).digest(),
            sign_with=sign_with,
            signature=signature,
            tamper_signature=tamper_signature,
        )

        cred.sign_count = count
        handle = cred.user_handle if isinstance(user_handle, _Unset) else user_handle
        response: dict[str, Any] = {
            "clientDataJSON": b64url_encode(client_data),
            "authenticatorData": b64url_encode(auth_data),
            "signature": b64url_encode(sig),
        }
        if handle:
            response["userHandle"] = b64url_encode(handle)
        return self._envelope(
            cred.credential_id,
            response,
            id_override=id_override,
            raw_id_override=raw_id_override,
            credential_type=credential_type,
            authenticator_attachment=authenticator_attachment,
            client_extension_results=client_extension_results,
        )

    # ------------------------------------------------------------------ envelope

    @staticmethod
    def _envelope(
        cred_id: bytes,
        response: dict[str, Any],
        *,
        id_override: str | None,
        raw_id_override: bytes | str | None,
        credential_type: str,
        authenticator_attachment: str | None,
        client_extension_results: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        if raw_id_override is None:
            raw_id = b64url_encode(cred_id)
        elif isinstance(raw_id_override, bytes):
            raw_id = b64url_encode(raw_id_override)
        else:
            raw_id = raw_id_override
        out: dict[str, Any] = {
            "id": b64url_encode(cred_id) if id_override is None else id_override,
            "rawId": raw_id,
            "type": credential_type,
            "response": response,
        }
        if authenticator_attachment is not None:
            out["authenticatorAttachment"] = authenticator_attachment
        out["clientExtensionResults"] = dict(client_extension_results or {})
        return out
