"""Clients of the passkey API (sync and async, over httpx): every endpoint, and token verification
through the tenant's JWKS.

    client = PasskeyClient("https://passgate.example/passkeys", tenant_id, api_key, audience="shop.example")
    options = client.registration_initialize("user-1", "ann@example.com")   # to the browser
    token = client.registration_finalize(credential_from_the_browser)
    claims = client.verify_token(token)

A second factor (a security key beside the backend's password) goes through the `mfa_*` calls; the
tenant's audit log through `list_audit_logs`.

The base URL may end in `/` or not. `http=` lends the client an httpx client of your own (its base
URL and headers are set to the tenant's). Errors are ApiError (the API's `title`, `details`, `status`),
ApiUnavailable (unreachable) and TokenInvalid (verification).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import httpx

from passgate.client import _wire, tokens
from passgate.client._wire import Call
from passgate.client.errors import ApiUnavailable
from passgate.client.models import AuditLogPage, Credential, CredentialPage, JSONObject, TokenClaims

Order = Literal["asc", "desc"]


class _Base:
    def __init__(
        self, base_url: str, tenant_id: str, api_key: str, *, audience: str | None, jwks_cooldown: float
    ) -> None:
        self.tenant_id = tenant_id
        self.url = _wire.tenant_url(base_url, tenant_id)
        self.audience = audience
        self.keys = tokens.KeyCache(cooldown=jwks_cooldown)
        self._headers = _wire.headers(api_key)

    def _verify(
        self,
        token: str,
        *,
        max_age: float | None,
        transaction_id: str | None,
        require_uv: bool,
    ) -> TokenClaims:
        assert self.keys.keys is not None
        return tokens.verify(
            token,
            self.keys.keys,
            tenant_id=self.tenant_id,
            audience=self.audience,
            max_age=max_age,
            transaction_id=transaction_id,
            require_uv=require_uv,
        )


class PasskeyClient(_Base):
    """The passkey API of one tenant, blocking. Close it (or use `with`) to release its connections."""

    def __init__(
        self,
        base_url: str,
        tenant_id: str,
        api_key: str,
        *,
        audience: str | None = None,
        timeout: float = 10.0,
        jwks_cooldown: float = 5.0,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, tenant_id, api_key, audience=audience, jwks_cooldown=jwks_cooldown)
        self.http = http or httpx.Client(timeout=timeout)
        self.http.base_url = httpx.URL(self.url)
        self.http.headers.update(self._headers)

    def __enter__(self) -> PasskeyClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _send(self, call: Call) -> httpx.Response:
        try:
            response = self.http.send(_wire.request(self.http, call))
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"{type(exc).__name__}: {exc}") from None
        return _wire.checked(response)

    def registration_initialize(
        self, user_id: str, username: str, display_name: str | None = None
    ) -> JSONObject:
        """`{"publicKey": creation options}` for the browser's `navigator.credentials.create`."""
        return _wire.json_object(self._send(_wire.registration_initialize(user_id, username, display_name)))

    def registration_finalize(self, credential: Mapping[str, Any]) -> str:
        """The token for the new passkey (`credential` is the browser's `credential.toJSON()`)."""
        return _wire.token(self._send(_wire.finalize("registration", credential)))

    def login_initialize(self, user_id: str | None = None) -> JSONObject:
        """`{"publicKey": request options}`: discoverable without `user_id`, else the user's passkeys."""
        return _wire.json_object(self._send(_wire.login_initialize(user_id)))

    def login_finalize(self, credential: Mapping[str, Any]) -> str:
        return _wire.token(self._send(_wire.finalize("login", credential)))

    def mfa_registration_initialize(
        self, user_id: str, username: str, display_name: str | None = None
    ) -> JSONObject:
        """Creation options for a second factor (a roaming authenticator; UV preferred)."""
        call = _wire.registration_initialize(user_id, username, display_name, mfa=True)
        return _wire.json_object(self._send(call))

    def mfa_registration_finalize(self, credential: Mapping[str, Any]) -> str:
        """The token for the new MFA credential (`is_mfa`: usable for an MFA login only)."""
        return _wire.token(self._send(_wire.finalize("mfa/registration", credential)))

    def mfa_login_initialize(self, user_id: str) -> JSONObject:
        """Request options listing every credential of the user."""
        return _wire.json_object(self._send(_wire.mfa_login_initialize(user_id)))

    def mfa_login_finalize(self, credential: Mapping[str, Any]) -> str:
        """The token of the second-factor check (its `uv` claim says whether the user was verified)."""
        return _wire.token(self._send(_wire.finalize("mfa/login", credential)))

    def transaction_initialize(self, user_id: str, transaction_id: str, transaction_data: Any) -> JSONObject:
        """Request options whose challenge is bound to the transaction (id once per tenant)."""
        call = _wire.transaction_initialize(user_id, transaction_id, transaction_data)
        return _wire.json_object(self._send(call))

    def transaction_finalize(self, credential: Mapping[str, Any]) -> str:
        """The token, whose `trans` claim names the transaction."""
        return _wire.token(self._send(_wire.finalize("transaction", credential)))

    def list_credentials(
        self, user_id: str | None = None, *, page: int = 1, per_page: int = 20, order: Order = "desc"
    ) -> CredentialPage:
        """One user's credentials, or (without `user_id`) the whole tenant's."""
        return _wire.credential_page(self._send(_wire.list_credentials(user_id, page, per_page, order)))

    def get_credential(self, credential_id: str) -> Credential:
        return Credential.from_json(_wire.json_object(self._send(_wire.credential("GET", credential_id))))

    def rename_credential(self, credential_id: str, name: str) -> None:
        self._send(_wire.credential("PATCH", credential_id, {"name": name}))

    def delete_credential(self, credential_id: str) -> None:
        self._send(_wire.credential("DELETE", credential_id))

    def list_audit_logs(
        self,
        *,
        page: int = 1,
        per_page: int = 20,
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
        types: Sequence[str] = (),
        actor_user_id: str | None = None,
        source_ip: str | None = None,
        q: str | None = None,
    ) -> AuditLogPage:
        """The tenant's audit log, newest first: events after `start_time` and before `end_time` (a
        naive datetime is UTC), of these `types`, whose actor or source address contains the text
        (`q`: either)."""
        call = _wire.list_audit_logs(
            page,
            per_page,
            start_time=start_time,
            end_time=end_time,
            types=types,
            actor_user_id=actor_user_id,
            source_ip=source_ip,
            q=q,
        )
        return _wire.audit_log_page(self._send(call))

    def jwks(self) -> JSONObject:
        """The tenant's public keys (`{"keys": [RSA JWK]}`)."""
        return _wire.json_object(self._send(_wire.JWKS))

    def verify_token(
        self,
        token: str,
        *,
        max_age: float | None = None,
        transaction_id: str | None = None,
        require_uv: bool = False,
    ) -> TokenClaims:
        """The claims of a finalize token signed by this tenant's key (TokenInvalid otherwise): not
        expired, for `audience` when the client has one; with `max_age`, a passkey check at most that
        many seconds old; with `transaction_id`, for that transaction; with `require_uv`, with UV."""
        if self.keys.wants_fetch(tokens.key_id(token)):
            response = self._send(_wire.JWKS)
            self.keys.load(_wire.json_object(response), _wire.jwks_max_age(response, tokens.DEFAULT_JWKS_TTL))
        return self._verify(token, max_age=max_age, transaction_id=transaction_id, require_uv=require_uv)


class AsyncPasskeyClient(_Base):
    """The passkey API of one tenant, for asyncio. `await client.aclose()` (or `async with`) at the end."""

    def __init__(
        self,
        base_url: str,
        tenant_id: str,
        api_key: str,
        *,
        audience: str | None = None,
        timeout: float = 10.0,
        jwks_cooldown: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, tenant_id, api_key, audience=audience, jwks_cooldown=jwks_cooldown)
        self.http = http or httpx.AsyncClient(timeout=timeout)
        self.http.base_url = httpx.URL(self.url)
        self.http.headers.update(self._headers)

    async def __aenter__(self) -> AsyncPasskeyClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send(self, call: Call) -> httpx.Response:
        try:
            response = await self.http.send(_wire.request(self.http, call))
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"{type(exc).__name__}: {exc}") from None
        return _wire.checked(response)

    async def registration_initialize(
        self, user_id: str, username: str, display_name: str | None = None
    ) -> JSONObject:
        call = _wire.registration_initialize(user_id, username, display_name)
        return _wire.json_object(await self._send(call))

    async def registration_finalize(self, credential: Mapping[str, Any]) -> str:
        return _wire.token(await self._send(_wire.finalize("registration", credential)))

    async def login_initialize(self, user_id: str | None = None) -> JSONObject:
        return _wire.json_object(await self._send(_wire.login_initialize(user_id)))

    async def login_finalize(self, credential: Mapping[str, Any]) -> str:
        return _wire.token(await self._send(_wire.finalize("login", credential)))

    async def mfa_registration_initialize(
        self, user_id: str, username: str, display_name: str | None = None
    ) -> JSONObject:
        call = _wire.registration_initialize(user_id, username, display_name, mfa=True)
        return _wire.json_object(await self._send(call))

    async def mfa_registration_finalize(self, credential: Mapping[str, Any]) -> str:
        return _wire.token(await self._send(_wire.finalize("mfa/registration", credential)))

    async def mfa_login_initialize(self, user_id: str) -> JSONObject:
        return _wire.json_object(await self._send(_wire.mfa_login_initialize(user_id)))

    async def mfa_login_finalize(self, credential: Mapping[str, Any]) -> str:
        return _wire.token(await self._send(_wire.finalize("mfa/login", credential)))

    async def transaction_initialize(
        self, user_id: str, transaction_id: str, transaction_data: Any
    ) -> JSONObject:
        call = _wire.transaction_initialize(user_id, transaction_id, transaction_data)
        return _wire.json_object(await self._send(call))

    async def transaction_finalize(self, credential: Mapping[str, Any]) -> str:
        return _wire.token(await self._send(_wire.finalize("transaction", credential)))

    async def list_credentials(
        self, user_id: str | None = None, *, page: int = 1, per_page: int = 20, order: Order = "desc"
    ) -> CredentialPage:
        call = _wire.list_credentials(user_id, page, per_page, order)
        return _wire.credential_page(await self._send(call))

    async def get_credential(self, credential_id: str) -> Credential:
        response = await self._send(_wire.credential("GET", credential_id))
        return Credential.from_json(_wire.json_object(response))

    async def rename_credential(self, credential_id: str, name: str) -> None:
        await self._send(_wire.credential("PATCH", credential_id, {"name": name}))

    async def delete_credential(self, credential_id: str) -> None:
        await self._send(_wire.credential("DELETE", credential_id))

    async def list_audit_logs(
        self,
        *,
        page: int = 1,
        per_page: int = 20,
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
        types: Sequence[str] = (),
        actor_user_id: str | None = None,
        source_ip: str | None = None,
        q: str | None = None,
    ) -> AuditLogPage:
        """As `PasskeyClient.list_audit_logs`."""
        call = _wire.list_audit_logs(
            page,
            per_page,
            start_time=start_time,
            end_time=end_time,
            types=types,
            actor_user_id=actor_user_id,
            source_ip=source_ip,
            q=q,
        )
        return _wire.audit_log_page(await self._send(call))

    async def jwks(self) -> JSONObject:
        return _wire.json_object(await self._send(_wire.JWKS))

    async def verify_token(
        self,
        token: str,
        *,
        max_age: float | None = None,
        transaction_id: str | None = None,
        require_uv: bool = False,
    ) -> TokenClaims:
        """As `PasskeyClient.verify_token`."""
        if self.keys.wants_fetch(tokens.key_id(token)):
            response = await self._send(_wire.JWKS)
            self.keys.load(_wire.json_object(response), _wire.jwks_max_age(response, tokens.DEFAULT_JWKS_TTL))
        return self._verify(token, max_age=max_age, transaction_id=transaction_id, require_uv=require_uv)
