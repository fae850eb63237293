"""A tenant's resident-key requirement and attestation conveyance (W3C WebAuthn L3 §5.4.6, §5.4.7): its
registration options carry them, whatever attestation comes back is verified, and `none` is accepted
when more was asked for (§7.1: the Relying Party decides what to trust). MFA keeps Hanko's defaults."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from apikit import Backend, Tenant, backend_client, make_tenant, problem
from passgate.services import tenant_settings
from passgate.services.context import Context
from seckit import credential_row, module_app
from softkey import b64url_decode

ctx, app = module_app("passkeypolicy")


@pytest.fixture(scope="module")
def strict(ctx: Context) -> Tenant:
    return make_tenant(ctx)  # the defaults: a discoverable credential required, attestation none


@pytest.fixture(scope="module")
def loose(ctx: Context) -> Tenant:
    return make_tenant(ctx, resident_key="discouraged", attestation="direct")


@pytest.fixture
async def backends(app: Any, strict: Tenant, loose: Tenant) -> AsyncIterator[tuple[Backend, Backend]]:
    async with backend_client(app) as http:
        yield Backend(http, strict), Backend(http, loose)


async def _options(backend: Backend, path: str = "/registration/initialize") -> dict[str, Any]:
    response = await backend.post(path, {"user_id": str(uuid.uuid4()), "username": "ann"})
    assert response.status_code == 200, response.text
    options: dict[str, Any] = response.json()["publicKey"]
    return options


async def test_each_tenant_s_options_carry_its_policy(backends: tuple[Backend, Backend]) -> None:
    strict, loose = backends
    options = await _options(strict)
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "required",
    }
    assert options["attestation"] == "none"
    options = await _options(loose)
    assert options["authenticatorSelection"] == {
        "residentKey": "discouraged",
        "requireResidentKey": False,
        "userVerification": "required",
    }
    assert options["attestation"] == "direct"


async def test_a_change_applies_to_the_next_ceremony(app: Any, ctx: Context) -> None:
    tenant = make_tenant(ctx)
    changed = tenant_settings.update_tenant(ctx, tenant.id, resident_key="preferred", attestation="indirect")
    assert changed == {"resident_key": ["required", "preferred"], "attestation": ["none", "indirect"]}
    async with backend_client(app) as http:
        options = await _options(Backend(http, tenant))
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["requireResidentKey"] is False
    assert options["attestation"] == "indirect"


async def test_mfa_keeps_hankos_defaults_whatever_the_tenant_asks(backends: tuple[Backend, Backend]) -> None:
    _, loose = backends
    options = await _options(loose, "/mfa/registration/initialize")
    assert options["authenticatorSelection"]["residentKey"] == "discouraged"
    assert options["authenticatorSelection"]["authenticatorAttachment"] == "cross-platform"
    assert options["attestation"] == "none"


async def test_a_packed_self_attestation_is_verified_and_stored(
    backends: tuple[Backend, Backend], ctx: Context
) -> None:
    _, loose = backends
    user = str(uuid.uuid4())
    registered = await loose.claims(await loose.register(user, fmt="packed"))
    assert credential_row(ctx, b64url_decode(registered["cred"]))["attestation_format"] == "packed"
    listed = (await loose.get("/credentials", user_id=user)).json()
    assert [item["attestation_type"] for item in listed] == ["packed"]
    assert (await loose.claims(await loose.login(user)))["sub"] == user


async def test_a_bad_attestation_signature_is_refused(backends: tuple[Backend, Backend]) -> None:
    _, loose = backends
    response = await loose.register(str(uuid.uuid4()), fmt="packed", tamper_signature=True)
    problem(response, 400, "failed to validate attestation")


async def test_none_is_accepted_when_direct_was_asked_for(
    backends: tuple[Backend, Backend], ctx: Context
) -> None:
    _, loose = backends
    registered = await loose.claims(await loose.register(str(uuid.uuid4())))
    assert credential_row(ctx, b64url_decode(registered["cred"]))["attestation_format"] == "none"
