"""`passgate audit`: the trail of what ended access and what changed it, with the acting session."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from appkit import app_client, make_settings
from flows import Passkeys, fresh, unique_name
from passgate.cli import app
from passgate.services.context import Context


@pytest.fixture
def audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Context:
    for name in ("PASSGATE_DATABASE_URL", "PASSGATE_SECRET_KEYS", "PASSGATE_SECRET_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PASSGATE_DATA_DIR", str(tmp_path))
    ctx = Context.build(make_settings(tmp_path))
    ctx.db.migrate()
    return ctx


async def test_audit_shows_a_users_security_events(audited: Context) -> None:
    name = unique_name()
    async with app_client(audited) as http:
        owner = Passkeys(http)
        assert (await owner.register(name)).status_code == 200
        session = (await owner.me()).json()["session_id"]
        spare = (await owner.add_passkey(fresh("EdDSA"))).json()["credential"]["credential_id"]
        assert (await owner.post("/auth/create-device-link")).status_code == 200
        assert (await owner.post("/auth/delete-credential", {"credential_id": spare})).status_code == 200
        assert (await owner.post("/auth/logout-all")).status_code == 200
        bystander = Passkeys(http)
        assert (await bystander.register()).status_code == 200

    result = CliRunner().invoke(app, ["audit", "--user", name])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("time (UTC)")
    kinds = [line.split("\t")[2] for line in lines[1:]]
    for kind in ("credential_added", "link_created", "credential_removed", "links_revoked", "sessions_ended"):
        assert kind in kinds, (kind, result.output)
    assert all(line.split("\t")[1] == name for line in lines[1:])  # only this user's
    assert "reason=signed_out_everywhere" in result.output
    assert session[:12] in result.output  # the acting session

    everyone = CliRunner().invoke(app, ["audit", "--limit", "3"])
    assert everyone.exit_code == 0 and len(everyone.output.splitlines()) == 4
    unknown = CliRunner().invoke(app, ["audit", "--user", "nobody-here"])
    assert unknown.exit_code == 1 and "No user named" in unknown.output
