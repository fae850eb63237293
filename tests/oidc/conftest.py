"""OpenID provider tests: one database per module, the clients of tests/oidckit.py registered. Every test
using `oidc_ctx` (or `http`) runs on SQLite and on PostgreSQL (`module_database_url`, tests/conftest.py):
the module's PostgreSQL database is its own, so tests that age codes or sessions in bulk touch nothing
else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from oidckit import CLIENTS
from passgate.services.context import Context
from seckit import build_context, client_for, settings_for


@pytest.fixture(scope="module")
def oidc_ctx(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Iterator[Context]:
    database = {"database_url": module_database_url} if module_database_url else {}
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
