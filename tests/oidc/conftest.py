"""OpenID provider tests: one database per module, the clients of tests/oidckit.py registered. Every test
using `oidc_ctx` (or `http`) runs on SQLite and on PostgreSQL: the module's PostgreSQL database is its
own (created next to the run's `postgres_url`, dropped afterwards), so tests that age codes or sessions
in bulk touch nothing else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from oidckit import CLIENTS
from passgate.services.context import Context
from seckit import build_context, client_for, settings_for


@pytest.fixture(scope="module")
def oidc_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite (the data dir's file), else a fresh PostgreSQL database for this module."""
    if request.param == "sqlite":
        yield None
        return
    import psycopg

    run_url: str = request.getfixturevalue("postgres_url")
    name = f"passgate_oidc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(run_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"{run_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(run_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "oidc_database_url" in metafunc.fixturenames:
        metafunc.parametrize(
            "oidc_database_url",
            ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
            indirect=True,
            scope="module",
        )


@pytest.fixture(scope="module")
def oidc_ctx(tmp_path_factory: pytest.TempPathFactory, oidc_database_url: str | None) -> Iterator[Context]:
    database = {"database_url": oidc_database_url} if oidc_database_url else {}
    context = build_context(settings_for(tmp_path_factory.mktemp("oidc"), oidc_clients=CLIENTS, **database))
    yield context
    context.db.dispose()


@pytest.fixture(scope="module")
def oidc_app(oidc_ctx: Context) -> Any:
    from passgate.web.app import create_app

    return create_app(oidc_ctx.settings, oidc_ctx)


@pytest.fixture
async def http(oidc_ctx: Context, oidc_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(oidc_ctx, "http://localhost:8000", oidc_app) as client:
        yield client
