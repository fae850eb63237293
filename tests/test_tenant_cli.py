"""`passgate tenant` and `passgate api-key`: what an operator types gives a backend a working tenant and a
key shown once; revoking it and deleting the tenant take effect on the next call."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from apikit import Backend, Tenant, backend_client
from commands import run
from passgate.config import load_settings
from passgate.services import passkey_tenants
from passgate.services.context import Context
from passgate.store.models import audit_events
from passgate.web.app import create_app

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def test_tenant_and_api_key_commands(data_dir: Path) -> None:
    added = run("tenant", "add", "Shop", "--rp-id", "localhost", "--origin", "http://localhost:3000")
    assert added.exit_code == 0, added.output
    tenant_id = re.search(f"Tenant ({UUID}) created", added.output).group(1)  # type: ignore[union-attr]
    secret = added.output.strip().splitlines()[-1]
    assert len(secret) == 88 and secret.endswith("==")
    assert tenant_id in run("tenant", "list").output
    shown = run("tenant", "show", tenant_id).output
    assert "Initial API key" in shown and secret not in shown

    ctx = Context.build(load_settings())
    async with backend_client(create_app(ctx.settings, ctx)) as http:
        backend = Backend(http, Tenant(tenant_id, secret))
        assert (await backend.claims(await backend.register("user-1")))["sub"] == "user-1"
        (key_id,) = re.findall(f"^({UUID})", run("api-key", "list", "--tenant", tenant_id).output, re.M)
        assert run("api-key", "revoke", "--tenant", tenant_id, key_id).exit_code == 0
        assert (await backend.get("/credentials")).status_code == 401
        assert run("tenant", "delete", tenant_id, "--yes").exit_code == 0
        assert (await backend.get("/credentials")).status_code == 404
    ctx.db.dispose()


def test_tenant_commands_refuse_bad_input(data_dir: Path) -> None:
    foreign = run("tenant", "add", "X", "--rp-id", "example.com", "--origin", "https://evil.com")
    assert foreign.exit_code == 1 and "does not belong" in foreign.output
    assert run("tenant", "show", "not-a-uuid").exit_code == 1
    assert run("api-key", "add", "--tenant", "5b0e7a3a-8d4e-4b8a-9f3e-1a2b3c4d5e6f").exit_code == 1


# --------------------------------------------------------------------------- tenant update


def _add(*options: str) -> str:
    added = run("tenant", "add", "Shop", "--no-api-key", *options)
    assert added.exit_code == 0, added.output
    return re.search(f"Tenant ({UUID}) created", added.output).group(1)  # type: ignore[union-attr]


def _events(ctx: Context, tenant_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The tenant's audit events, oldest first: (kind, detail)."""

    def work(connection: Connection) -> list[tuple[str, dict[str, Any]]]:
        rows = connection.execute(
            select(audit_events.c.kind, audit_events.c.detail)
            .where(audit_events.c.tenant_id == tenant_id)
            .order_by(audit_events.c.id)
        )
        return [(row.kind, json.loads(row.detail)) for row in rows]

    return ctx.db.transact(work, write=False)


async def test_tenant_update_takes_effect_at_once_and_is_audited(data_dir: Path) -> None:
    tenant_id = _add("--rp-id", "localhost", "--origin", "http://localhost:3000")
    key = passkey_tenants.add_api_key(ctx := Context.build(load_settings()), tenant_id).secret
    async with backend_client(create_app(ctx.settings, ctx)) as http:  # running before the change
        backend = Backend(http, Tenant(tenant_id, key))
        updated = run(
            "tenant", "update", tenant_id, "--rp-name", "Shop Ltd", "--user-verification", "preferred",
            "--timeout-ms", "90000", "--origin", "http://localhost:3000", "--origin", "http://app.localhost:3000",
        )  # fmt: skip
        assert updated.exit_code == 0, updated.output
        assert "rp_name: Shop → Shop Ltd" in updated.output and "timeout_ms: 60000 → 90000" in updated.output
        begin = await backend.post("/registration/initialize", {"user_id": "u1", "username": "ann"})
        options = begin.json()["publicKey"]
        assert options["rp"]["name"] == "Shop Ltd" and options["timeout"] == 90000
        assert options["authenticatorSelection"]["userVerification"] == "preferred"
        other_origin = Backend(http, Tenant(tenant_id, key, "http://app.localhost:3000"))
        assert (await other_origin.claims(await other_origin.register("u2")))["sub"] == "u2"

        again = run("tenant", "update", tenant_id, "--rp-name", "Shop Ltd")
        assert again.exit_code == 0 and "nothing changed" in again.output
        updates = [detail for kind, detail in _events(ctx, tenant_id) if kind == "tenant_updated"]
        assert updates == [
            {
                "by": "admin",
                "changed": {
                    "rp_name": ["Shop", "Shop Ltd"],
                    "origins": [
                        ["http://localhost:3000"],
                        ["http://localhost:3000", "http://app.localhost:3000"],
                    ],
                    "user_verification": ["required", "preferred"],
                    "timeout_ms": [60000, 90000],
                },
            }
        ]

        # With a passkey, the RP ID stays: refused with the reason, nothing changed.
        moved = run(
            "tenant", "update", tenant_id, "--rp-id", "shop.localhost", "--origin", "http://shop.localhost:3000",
            "--rp-name", "Elsewhere",
        )  # fmt: skip
        assert moved.exit_code == 1
        assert "cannot change from 'localhost' to 'shop.localhost'" in moved.output
        assert "1 passkey(s)" in moved.output and "§5.1.4" in moved.output
        assert "rp_id: localhost\nrp_name: Shop Ltd" in run("tenant", "show", tenant_id).output
        kinds = [
            kind for kind, _ in _events(ctx, tenant_id) if not kind.startswith("webauthn_")
        ]  # the API's own
        assert kinds == ["tenant_added", "api_key_added", "tenant_updated", "credential_added"]
    ctx.db.dispose()


def test_the_rp_id_changes_while_a_tenant_has_no_passkeys(data_dir: Path) -> None:
    tenant_id = _add("--rp-id", "old.example")
    bare = run("tenant", "update", tenant_id, "--rp-id", "new.example")
    assert (
        bare.exit_code == 1
        and "'https://old.example' does not belong to --rp-id 'new.example'" in bare.output
    )
    moved = run("tenant", "update", tenant_id, "--rp-id", "New.Example", "--origin", "https://new.example")
    assert moved.exit_code == 0, moved.output
    assert "rp_id: old.example → new.example" in moved.output
    assert "origins: https://new.example" in run("tenant", "show", tenant_id).output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--timeout-ms", "5"], "--timeout-ms must be at least 10000"),
        (["--user-verification", "always"], "--user-verification must be one of"),
        (["--origin", "https://evil.example"], "does not belong to --rp-id 'localhost'"),
        (["--origin", "http://localhost:3000/app"], "--origin: 'http://localhost:3000/app' must look like"),
        (["--rp-id", "https://shop.example"], "--rp-id must be a bare domain"),
        (["--rp-id", "127.0.0.1"], "--rp-id cannot be an IP address"),
        (["--name", "x" * 201], "--name is longer than 200 characters"),
        (["--resident-key", "always"], "--resident-key must be one of 'required', 'preferred' or"),
        (["--attestation", "enterprise"], "--attestation must be one of 'none', 'indirect' or 'direct'"),
    ],
)
def test_tenant_update_refuses_bad_values_and_changes_nothing(
    data_dir: Path, options: list[str], message: str
) -> None:
    tenant_id = _add("--rp-id", "localhost", "--origin", "http://localhost:3000")
    before = run("tenant", "show", tenant_id).output
    result = run("tenant", "update", tenant_id, *options)
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert run("tenant", "show", tenant_id).output == before


def test_tenant_update_needs_a_tenant_and_a_change(data_dir: Path) -> None:
    nothing = run("tenant", "update", "5b0e7a3a-8d4e-4b8a-9f3e-1a2b3c4d5e6f")
    assert nothing.exit_code == 2 and "Nothing to change" in nothing.output
    unknown = run("tenant", "update", "5b0e7a3a-8d4e-4b8a-9f3e-1a2b3c4d5e6f", "--rp-name", "x")
    assert unknown.exit_code == 1 and "tenant not found" in unknown.output
    assert run("tenant", "update", "not-a-uuid", "--rp-name", "x").exit_code == 1


async def test_resident_key_and_attestation_are_tenant_settings(data_dir: Path) -> None:
    tenant_id = _add("--rp-id", "localhost", "--resident-key", "discouraged", "--attestation", "direct")
    shown = run("tenant", "show", tenant_id).output
    assert "resident_key: discouraged\nattestation: direct\n" in shown
    updated = run("tenant", "update", tenant_id, "--resident-key", "required", "--attestation", "none")
    assert updated.exit_code == 0, updated.output
    assert "resident_key: discouraged → required" in updated.output
    assert "attestation: direct → none" in updated.output
    ctx = Context.build(load_settings())
    updates = [detail for kind, detail in _events(ctx, tenant_id) if kind == "tenant_updated"]
    assert updates == [
        {
            "by": "admin",
            "changed": {"resident_key": ["discouraged", "required"], "attestation": ["direct", "none"]},
        }
    ]
    ctx.db.dispose()
    refused = run("tenant", "add", "Shop", "--rp-id", "localhost", "--attestation", "maybe")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert refused.output.strip().endswith(
        "--attestation must be one of 'none', 'indirect' or 'direct', not 'maybe'."
    )
