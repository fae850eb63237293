"""`passgate user group …` and `passgate doctor --url …`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner


def test_cli_manages_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from passgate.cli import app

    monkeypatch.setenv("PASSGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PASSGATE_SECRET_KEYS", "k" * 48)
    runner = CliRunner()
    assert runner.invoke(app, ["user", "add", "grace"]).exit_code == 0
    result = runner.invoke(app, ["user", "group", "add", "grace", "Ops"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["user", "group", "add", "grace", "dev"]).exit_code == 0
    assert runner.invoke(app, ["user", "group", "list", "grace"]).output.split() == ["dev", "ops"]
    assert runner.invoke(app, ["user", "group", "remove", "grace", "dev"]).exit_code == 0
    assert runner.invoke(app, ["user", "group", "list", "grace"]).output.split() == ["ops"]
    bad = runner.invoke(app, ["user", "group", "add", "grace", "no spaces"])
    assert bad.exit_code == 1 and "not a group name" in bad.output
    assert runner.invoke(app, ["user", "group", "add", "nobody", "ops"]).exit_code == 1


def test_doctor_explains_a_protected_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from passgate.cli import app

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "PASSGATE_DATA_DIR": str(tmp_path),
        "PASSGATE_SECRET_KEYS": "k" * 48,
        "PASSGATE_RP_ID": "example.com",
        "PASSGATE_ORIGINS": "https://auth.example.com",
        "PASSGATE_COOKIE_DOMAIN": "example.com",
        "PASSGATE_TRUSTED_PROXIES": "127.0.0.1",
        "PASSGATE_FORWARD_AUTH_RULES": (
            '{"admin": {"host": "app.example.com", "path": "/admin", "groups": ["admins"]}}'
        ),
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["doctor", "--url", "https://app.example.com/x/../Admin/users"])
    assert result.exit_code == 0, result.output
    assert "Domain=example.com reaches app.example.com" in result.output
    assert "path is ambiguous (dot-segment): every path rule applies" in result.output
    assert "applies by host/path — admin: group admins" in result.output
    assert "then back to https://app.example.com/x/../Admin/users" in result.output
    plain = CliRunner().invoke(app, ["doctor", "--url", "https://app.example.com/%41dmin/users?x=1"])
    assert "path as matched (any of): /%41dmin/users, /admin/users" in plain.output
    assert "applies by host/path — admin: group admins" in plain.output
    refused = CliRunner().invoke(app, ["doctor", "--url", "https://app.elsewhere.org/"])
    assert refused.exit_code == 1
    assert "never reaches" not in refused.output and "does not reach app.elsewhere.org" in refused.output
    assert "app.elsewhere.org is none of Passgate's own hosts" in refused.output
    monkeypatch.delenv("PASSGATE_TRUSTED_PROXIES")
    untrusted = CliRunner().invoke(app, ["doctor", "--url", "https://app.example.com/"])
    assert untrusted.exit_code == 1 and "PASSGATE_TRUSTED_PROXIES" in untrusted.output
