"""A short run of benchmarks/scale.py (200 accounts) so the scale benchmark cannot rot: the bulk loader's
rows are what Passgate writes (loaded accounts sign in, named and usernameless, through a real `passgate
serve`), `/auth/me` answers for their sessions, two instances share the database, and every statement
of the request paths has a plan."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import scale

pytestmark = pytest.mark.postgres


async def test_scale_benchmark_loads_signs_in_and_explains(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    short = "--users 200 --seconds 0.45 --warmup 0 --rounds 1 --pair-seconds 0.3 --jobs 1 --quiet-plans"
    args = scale.parse([*short.split(), "--database-url", postgres_url])
    outcome = await scale.run(args)

    printed = capsys.readouterr().out
    assert "loaded 200 accounts" in printed
    (stage,) = outcome.stages
    operations = [item.operation for item in stage.results]
    assert operations == ["sign-in usernameless", "sign-in named", "GET /auth/me"]
    assert outcome.single is not None and outcome.pair is not None
    for item in outcome.measured:
        assert item.ops > 0 and item.errors == 0, (item.operation, item.first_error)
        assert item.server_cpu > 0
        # `/auth/me` is answered from memory while its session is unchanged (the triggers of migration
        # 0011 tell each process when it is not): only the sign-ins must reach PostgreSQL
        assert item.postgres_cpu > 0 or item.operation == "GET /auth/me", item.operation
    steps = {plan.statement.step for plan in outcome.plans}
    assert "sign-in finish: credential ⋈ user by credential id" in steps
    assert "/auth/me: session ⋈ user by id" in steps
    assert all(plan.lines for plan in outcome.plans)
    assert "pk_credentials" in printed and "uq_users_tenant_key" in printed  # plans and index sizes
