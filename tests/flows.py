"""Test helpers that drive `/auth` flows the way a browser page would, with the software authenticator."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from softkey import Alg, SoftAuthenticator

ORIGIN = "http://localhost:8000"


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Passkeys:
    """One browser: an HTTP client with its cookie jar and a software authenticator."""

    def __init__(self, http: httpx.AsyncClient, authenticator: SoftAuthenticator | None = None):
        self.http = http
        self.authenticator = authenticator or SoftAuthenticator()

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.http.post(path, json=body if body is not None else {})

    async def register(self, user_name: str | None = None, **knobs: Any) -> httpx.Response:
        begin = await self.post("/auth/register/begin", {"user_name": user_name or unique_name()})
        assert begin.status_code == 200, begin.text
        credential = self.authenticator.create(begin.json(), origin=ORIGIN, **knobs)
        return await self.post("/auth/register/finish", credential)

    async def login_options(self, user_name: str | None = None) -> dict[str, Any]:
        begin = await self.post("/auth/login/begin", {"user_name": user_name} if user_name else {})
        assert begin.status_code == 200, begin.text
        options: dict[str, Any] = begin.json()
        return options

    async def login(self, user_name: str | None = None, **knobs: Any) -> httpx.Response:
        options = await self.login_options(user_name)
        credential = self.authenticator.get(options, origin=ORIGIN, **knobs)
        return await self.post("/auth/login/finish", credential)

    async def add_passkey(
        self, authenticator: SoftAuthenticator | None = None, **knobs: Any
    ) -> httpx.Response:
        begin = await self.post("/auth/credentials/begin")
        assert begin.status_code == 200, begin.text
        return await self.post(
            "/auth/credentials/finish",
            (authenticator or self.authenticator).create(begin.json(), origin=ORIGIN, **knobs),
        )

    async def me(self) -> httpx.Response:
        return await self.http.get("/auth/me")


def fresh(alg: Alg = "ES256", **options: Any) -> SoftAuthenticator:
    return SoftAuthenticator(alg, **options)
