"""Passkey-API tenants declared in the TOML file: created, then kept in step with the file by every start
(and every command), idempotently and by several processes at once; changed only in the file; a change
of RP ID that would strand passkeys stops start-up with a sentence. And `passgate doctor` naming the
tenants whose token-signing key no configured secret key opens."""

from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select
from typer.testing import Result

from apikit import Backend, Tenant, backend_client, make_tenant
from appkit import make_settings
from commands import run
from passgate.config import load_settings
from passgate.services import passkey_tenants, tenant_settings
from passgate.services.context import Context
from passgate.store.models import audit_events
from passgate.web.app import create_app

TENANT = "5b0e7a3a-8d4e-4b8a-9f3e-1a2b3c4d5e6f"
SHOP = {"name": "Shop", "rp_id": "localhost", "origins": ["http://localhost:3000"]}
OLD_KEY, NEW_KEY = "o" * 48, "n" * 48


def declare(tenants: dict[str, dict[str, Any]]) -> None:
    """Write ./passgate.toml with one `[passkey_tenants.<id>]` table per tenant (JSON strings, numbers and
    lists of strings are TOML too)."""
    lines = []
    for tenant_id, settings in tenants.items():
        lines.append(f"[passkey_tenants.{tenant_id}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    Path("passgate.toml").write_text("\n".join(lines) + "\n")


def events(ctx: Context, tenant_id: str) -> list[tuple[str, dict[str, Any]]]:
    def work(connection: Connection) -> list[tuple[str, dict[str, Any]]]:
        rows = connection.execute(
            select(audit_events.c.kind, audit_events.c.detail)
            .where(audit_events.c.tenant_id == tenant_id)
            .order_by(audit_events.c.id)
        )
        return [(row.kind, json.loads(row.detail)) for row in rows]

    return ctx.db.transact(work, write=False)


def _one_sentence(result: Result, code: int, *parts: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for part in parts:
        assert part in result.output, (part, result.output)


# --------------------------------------------------------------------------- declared in the file


async def test_a_declared_tenant_is_created_then_kept_in_step_with_the_file(data_dir: Path) -> None:
    declare({TENANT: SHOP})
    first = run("tenant", "list")
    _one_sentence(first, 0, f"Passkey-API tenant {TENANT} (localhost) created from the configuration")
    assert f"{TENANT}\tlocalhost\tShop\tconfig" in first.output
    second = run("tenant", "list")
    assert second.exit_code == 0 and "from the configuration" not in second.output  # nothing to do
    assert "declared in: the configuration file" in run("tenant", "show", TENANT).output

    # Keys are made by command, for a declared tenant as for any other; it signs in.
    added = run("api-key", "add", "--tenant", TENANT)
    assert added.exit_code == 0, added.output
    ctx = Context.build(load_settings())
    async with backend_client(create_app(ctx.settings, ctx)) as http:
        backend = Backend(http, Tenant(TENANT, added.output.strip().splitlines()[-1]))
        assert (await backend.claims(await backend.register("u1")))["sub"] == "u1"
    assert run("tenant", "rotate-key", TENANT).exit_code == 0

    # Changed or deleted only in the file.
    for command in (["update", TENANT, "--rp-name", "X"], ["delete", TENANT, "--yes"]):
        _one_sentence(run("tenant", *command), 1, "declared in the configuration file", "edit it there")

    declare({TENANT: SHOP | {"rp_name": "Shop Ltd", "timeout_ms": 90000}})
    shown = run("tenant", "show", TENANT)
    _one_sentence(shown, 0, f"{TENANT} (localhost) updated (rp_name, timeout_ms) from the configuration")
    assert "rp_name: Shop Ltd" in shown.output and "timeout_ms: 90000" in shown.output
    by_config = [(kind, detail) for kind, detail in events(ctx, TENANT) if detail.get("by") == "config"]
    assert by_config == [
        ("tenant_added", {"by": "config", "rp_id": "localhost"}),
        (
            "tenant_updated",
            {"by": "config", "changed": {"rp_name": ["Shop", "Shop Ltd"], "timeout_ms": [60000, 90000]}},
        ),
    ]

    # A new RP ID would strand the passkey: start-up stops with the reason; doctor shows it.
    declare({TENANT: SHOP | {"rp_id": "shop.localhost", "origins": ["http://shop.localhost:3000"]}})
    why = "rp_id cannot change from 'localhost' to 'shop.localhost': its 1 passkey(s)"
    for command in (["migrate"], ["tenant", "list"]):
        _one_sentence(run(*command), 2, "PASSGATE_PASSKEY_TENANTS", why, f"[passkey_tenants.{TENANT}]")
    doctor = run("doctor")
    _one_sentence(doctor, 1, "✘ passkey-API tenants in the configuration", why)

    # Out of the file, the tenant stays (with its users and passkeys) until deleted by command.
    declare({})
    assert f"{TENANT}\tlocalhost\tShop\tcommand" in run("tenant", "list").output
    assert run("tenant", "delete", TENANT, "--yes").exit_code == 0
    ctx.db.dispose()


def test_doctor_says_what_the_next_start_does_to_declared_tenants(data_dir: Path) -> None:
    declare({TENANT: SHOP})
    assert run("migrate").exit_code == 0  # any command applies the file
    in_step = run("doctor")
    _one_sentence(in_step, 0, "✔ passkey-API tenants in the configuration: 1 declared, all as stored")
    second = str(uuid.UUID(int=1))
    declare({TENANT: SHOP | {"origins": ["http://localhost:4000"]}, second: {"rp_id": "other.example"}})
    doctor = run("doctor")  # looks, changes nothing
    _one_sentence(doctor, 0, "✔ passkey-API tenants in the configuration: applied at the next start")
    assert (
        f"{TENANT} (localhost) to be updated (origins); {second} (other.example) to be created"
        in doctor.output
    )
    assert f"{TENANT} (localhost), {second} (other.example)" in doctor.output  # the table's line
    assert "to be created" in run("doctor").output


def test_a_bad_tenant_in_the_toml_file_is_one_sentence(data_dir: Path) -> None:
    declare({TENANT: {"rp_id": "shop.example", "origins": ["https://evil.example"], "api_key": "x" * 88}})
    doctor = run("doctor")
    _one_sentence(
        doctor, 1, "✘ configuration", "does not belong to rp_id 'shop.example'", "API keys are never"
    )
    assert any(line.startswith("✘ PASSGATE_PASSKEY_TENANTS") for line in doctor.output.splitlines())
    _one_sentence(run("migrate"), 2, f"PASSGATE_PASSKEY_TENANTS: the tenant '{TENANT}': origins:")


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("resident_key", "always", "resident_key must be one of 'required', 'preferred' or 'discouraged'"),
        ("attestation", "enterprise", "attestation must be one of 'none', 'indirect' or 'direct'"),
    ],
)
def test_a_bad_policy_in_the_toml_file_is_one_sentence(
    data_dir: Path, setting: str, value: str, message: str
) -> None:
    declare({TENANT: SHOP | {setting: value}})
    _one_sentence(run("migrate"), 2, f"PASSGATE_PASSKEY_TENANTS: the tenant '{TENANT}': {message}")


def test_the_toml_file_sets_resident_key_and_attestation(data_dir: Path) -> None:
    declare({TENANT: SHOP | {"resident_key": "preferred", "attestation": "indirect"}})
    shown = run("tenant", "show", TENANT)
    assert shown.exit_code == 0, shown.output
    assert "resident_key: preferred\nattestation: indirect\n" in shown.output
    declare({TENANT: SHOP})  # left out: the defaults again
    shown = run("tenant", "show", TENANT)
    _one_sentence(
        shown, 0, f"{TENANT} (localhost) updated (resident_key, attestation) from the configuration"
    )
    assert "resident_key: required\nattestation: none\n" in shown.output


async def test_the_app_applies_the_file_when_it_starts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, passkey_tenants={TENANT: SHOP})
    ctx = Context.build(settings)
    ctx.db.migrate()
    application = create_app(settings, ctx)
    assert passkey_tenants.list_tenants(ctx) == []
    async with application.router.lifespan_context(application):
        assert [tenant.tenant_id for tenant in passkey_tenants.list_tenants(ctx)] == [TENANT]
    ctx.db.dispose()


def test_several_processes_starting_at_once_make_one_tenant(tmp_path: Path, database_url: str) -> None:
    tenant_id = str(uuid.uuid4())  # the PostgreSQL database is shared by the run
    settings = make_settings(tmp_path, database_url=database_url, passkey_tenants={tenant_id: SHOP})
    contexts = [Context.build(settings) for _ in range(4)]
    contexts[0].db.migrate()
    barrier = threading.Barrier(len(contexts))
    results: list[list[tenant_settings.Plan] | BaseException] = []

    def start(ctx: Context) -> None:
        barrier.wait(timeout=10)
        try:
            results.append(tenant_settings.apply_declared(ctx))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=start, args=(ctx,)) for ctx in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(result, list) for result in results), results
    assert sorted(len(result) for result in results) == [0, 0, 0, 1]  # type: ignore[arg-type]
    assert [kind for kind, _ in events(contexts[0], tenant_id)] == ["tenant_added"]
    assert tenant_settings.apply_declared(contexts[0]) == []
    for ctx in contexts:
        ctx.db.dispose()


# --------------------------------------------------------------------------- sealed signing keys


async def test_doctor_names_the_tenants_no_secret_key_can_unseal(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSGATE_SECRET_KEYS", OLD_KEY)
    ctx = Context.build(load_settings())
    ctx.db.migrate()
    shop, other = make_tenant(ctx), make_tenant(ctx, rp_id="example.com", origin="https://example.com")
    async with backend_client(create_app(ctx.settings, ctx)) as http:
        backend = Backend(http, shop)
        assert (await backend.claims(await backend.register("u1")))["sub"] == "u1"
    ctx.db.dispose()
    healthy = run("doctor")
    assert healthy.exit_code == 0 and "✘" not in healthy.output
    assert "token-signing keys" not in healthy.output  # nothing to say

    monkeypatch.setenv("PASSGATE_SECRET_KEYS", NEW_KEY)  # the old key was removed from the list
    lost = run("doctor")
    _one_sentence(lost, 1, "✘ passkey-API token-signing keys", "no longer in PASSGATE_SECRET_KEYS")
    line = next(line for line in lost.output.splitlines() if "✘ passkey-API token-signing keys" in line)
    assert shop.id in line and other.id in line and "(shop, example.com)" in line
    assert "Put that secret key back" in line and "passgate tenant rotate-key ID" in line

    # As doctor says: the tenant cannot issue tokens, until its key is rotated.
    passkey_tenants._loaded.clear()  # a restarted process: no key unsealed yet
    ctx = Context.build(load_settings())
    async with backend_client(create_app(ctx.settings, ctx)) as http:
        backend.http = http
        failed = await backend.login("u1")
        assert failed.status_code == 500 and failed.json() == {
            "title": "Internal Server Error",
            "status": 500,
        }
        # Refused before anything is stored: no passkey without its token, no counter moved.
        assert (await backend.register("u2")).status_code == 500
        assert (await backend.get("/credentials", user_id="u2")).json() == []
        assert run("tenant", "rotate-key", shop.id).exit_code == 0
        assert (await backend.claims(await backend.login("u1")))["sub"] == "u1"
    ctx.db.dispose()
    line = next(line for line in run("doctor").output.splitlines() if "token-signing keys" in line)
    assert line.startswith("  ✘") and other.id in line and shop.id not in line

    monkeypatch.setenv("PASSGATE_SECRET_KEYS", f"{NEW_KEY},{OLD_KEY}")  # the old key back, second
    aging = run("doctor")
    assert aging.exit_code == 0
    line = next(line for line in aging.output.splitlines() if "token-signing keys" in line)
    assert line.startswith("  ✔") and other.id in line and "Before you retire that key" in line


def test_doctor_names_the_key_file_when_it_is_gone(data_dir: Path) -> None:
    added = run("tenant", "add", "Shop", "--rp-id", "localhost", "--no-api-key")
    tenant_id = re.search(r"Tenant (\S+) created", added.output).group(1)  # type: ignore[union-attr]
    (data_dir / "secret-keys").unlink()
    doctor = run("doctor")
    _one_sentence(doctor, 1, "✘ passkey-API token-signing keys", tenant_id, str(data_dir / "secret-keys"))
