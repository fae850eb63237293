"""OpenID provider tests: one database per module, the clients of tests/oidckit.py registered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from oidckit import CLIENTS
from passgate.services.context import Context
from seckit import client_for, module_app

oidc_ctx, oidc_app = module_app("oidc", "oidc_", oidc_clients=CLIENTS)


@pytest.fixture
async def http(oidc_ctx: Context, oidc_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(oidc_ctx, "http://localhost:8000", oidc_app) as client:
        yield client
