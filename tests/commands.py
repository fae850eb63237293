"""`run`: a `passgate` command in process, as the tests call it (with the `data_dir` fixture of
conftest.py for a clean environment)."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from passgate.cli import app


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=input)
