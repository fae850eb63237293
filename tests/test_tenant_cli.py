"""`passgate tenant` and `passgate api-key`: what an operator types gives a backend a working tenant and a
key shown once; revoking it and deleting the tenant take effect on the next call."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from apikit import Backend, Tenant, backend_client
from passgate.cli import app
from passgate.config import load_settings
from passgate.services.context import Context
from passgate.web.app import create_app

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("PASSGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "data"
    monkeypatch.setenv("PASSGATE_DATA_DIR", str(directory))
    yield directory


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


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
