"""The passkey API for other backends, driven the way a backend and its users' browsers drive it:
a tenant made with the service (as `passgate tenant add` does), an HTTP client that sends the `apiKey`
header as Hanko's clients do, and the software authenticator at the tenant's origin."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from passgate.services import passkey_tenants, tenant_settings
from passgate.services.context import Context
from softkey import SoftAuthenticator

APP_ORIGIN = "http://localhost:3000"  # the backend's own site, where its users' browsers run


@dataclass
class Tenant:
    id: str
    api_key: str
    origin: str = APP_ORIGIN


def make_tenant(
    ctx: Context, *, rp_id: str = "localhost", origin: str = APP_ORIGIN, **options: Any
) -> Tenant:
    record = tenant_settings.add_tenant(ctx, name="shop", rp_id=rp_id, origins=[origin], **options)
    key = passkey_tenants.add_api_key(ctx, record.tenant_id, "test")
    return Tenant(record.tenant_id, key.secret, origin)


def uid() -> str:
    """A backend's user id: any string; a UUID here, so tests never collide."""
    return str(uuid.uuid4())


def backend_client(app: Any) -> httpx.AsyncClient:
    """A backend calling over HTTP: no Origin header, no cookies."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost:8000")


@dataclass
class Backend:
    """One backend of one tenant, and a browser (software authenticator) for its users."""

    http: httpx.AsyncClient
    tenant: Tenant
    authenticator: SoftAuthenticator = field(default_factory=SoftAuthenticator)

    @property
    def base(self) -> str:
        return f"/passkeys/{self.tenant.id}"

    @property
    def headers(self) -> dict[str, str]:
        return {"apikey": self.tenant.api_key, "content-type": "application/json"}

    async def post(self, path: str, body: Any = None, *, key: bool = True) -> httpx.Response:
        headers = self.headers if key else {"content-type": "application/json"}
        content = b"" if body is None else httpx.Request("POST", "/", json=body).content
        return await self.http.post(self.base + path, content=content, headers=headers)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(self.base + path, headers=self.headers, params=params)

    async def register(self, user_id: str, username: str = "", **knobs: Any) -> httpx.Response:
        begin = await self.post(
            "/registration/initialize", {"user_id": user_id, "username": username or user_id}
        )
        assert begin.status_code == 200, begin.text
        credential = self.authenticator.create(begin.json(), origin=self.tenant.origin, **knobs)
        return await self.post("/registration/finalize", credential, key=False)

    async def login(self, user_id: str | None = None, **knobs: Any) -> httpx.Response:
        begin = await self.post(
            "/login/initialize", {"user_id": user_id} if user_id else None, key=bool(user_id)
        )
        assert begin.status_code == 200, begin.text
        credential = self.authenticator.get(begin.json(), origin=self.tenant.origin, **knobs)
        return await self.post("/login/finalize", credential, key=False)

    async def mfa_register(self, user_id: str, username: str = "", **knobs: Any) -> httpx.Response:
        """A second factor (a security key, `is_mfa`) for the user, through the MFA routes."""
        begin = await self.post(
            "/mfa/registration/initialize", {"user_id": user_id, "username": username or user_id}
        )
        assert begin.status_code == 200, begin.text
        credential = self.authenticator.create(begin.json(), origin=self.tenant.origin, **knobs)
        return await self.post("/mfa/registration/finalize", credential)

    async def mfa_login(self, user_id: str, **knobs: Any) -> httpx.Response:
        begin = await self.post("/mfa/login/initialize", {"user_id": user_id})
        assert begin.status_code == 200, begin.text
        credential = self.authenticator.get(begin.json(), origin=self.tenant.origin, **knobs)
        return await self.post("/mfa/login/finalize", credential)

    async def claims(self, response: httpx.Response) -> dict[str, Any]:
        """The finalize token's claims, verified through the tenant's JWKS (as a backend should)."""
        assert response.status_code == 200, response.text
        keys = await self.http.get(self.base + "/.well-known/jwks.json")
        token = jwt.decode(response.json()["token"], KeySet.import_key_set(keys.json()), algorithms=["RS256"])
        claims: dict[str, Any] = token.claims
        return claims


def problem(response: httpx.Response, status: int, title: str) -> dict[str, Any]:
    """Hanko's error shape, with this status and title."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    assert set(body) == {"title", "details", "status"}, body
    assert body["status"] == status and body["title"] == title, body
    return body
