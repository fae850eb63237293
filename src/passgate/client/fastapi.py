"""A FastAPI dependency for a passkey step-up ("a passkey check with UV newer than N seconds, for this
transaction"); see `passgate.client.stepup` for the exchange with the front end.

    passkeys = AsyncPasskeyClient(base_url, tenant_id, api_key, audience="shop.example")
    stepup = PasskeyStepUp(passkeys, user_id=lambda request: request.session.get("user_id"))
    app.post("/passkey/transaction/finalize")(stepup.finalize)

    @app.post("/transfer")
    async def transfer(claims: Annotated[TokenClaims, Depends(stepup.require(max_age=120))]) -> ...:
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request

from passgate.client import stepup
from passgate.client.api import AsyncPasskeyClient
from passgate.client.errors import ApiError, PasskeyError, TokenInvalid
from passgate.client.models import JSONObject, TokenClaims

UserId = Callable[[Request], "str | Awaitable[str | None] | None"]
Describe = Callable[[Request], Awaitable[Any]]


async def describe_request(request: Request) -> Any:
    """The default transaction data: method, path, query and a hash of the body."""
    body = await request.body()
    return stepup.request_data(request.method, request.url.path, request.url.query, body)


def _answer(status: int, body: JSONObject, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=body["detail"], headers=headers)


class PasskeyStepUp:
    """Protects FastAPI routes with a fresh passkey check of the signed-in user (`user_id(request)`)."""

    def __init__(
        self,
        client: AsyncPasskeyClient,
        *,
        user_id: UserId,
        describe: Describe = describe_request,
        header: str = stepup.TOKEN_HEADER,
    ) -> None:
        self.client = client
        self.user_id = user_id
        self.describe = describe
        self.header = header

    def require(self, max_age: float = stepup.DEFAULT_MAX_AGE) -> Callable[[Request], Awaitable[TokenClaims]]:
        """A dependency answering the claims of a valid token, else `401` with the options to check."""

        async def passkey_check(request: Request) -> TokenClaims:
            user_id = await self._user_id(request)
            data = await self.describe(request)
            token = request.headers.get(self.header)
            reason = "no token"
            if token:
                try:
                    claims = await self.client.verify_token(token, max_age=max_age, require_uv=True)
                    return stepup.check(claims, user_id=user_id, data=data)
                except TokenInvalid as exc:
                    reason = exc.details
            raise await self._challenge(user_id, data, reason)

        return passkey_check

    async def _user_id(self, request: Request) -> str:
        found = self.user_id(request)
        user_id = await found if inspect.isawaitable(found) else found
        if not user_id:
            raise _answer(401, stepup.not_signed_in())
        return user_id

    async def _challenge(self, user_id: str, data: Any, reason: str) -> HTTPException:
        transaction_id = stepup.new_transaction_id(data)
        try:
            options = await self.client.transaction_initialize(user_id, transaction_id, data)
        except PasskeyError as exc:
            return _answer(*stepup.refused(exc))
        body = stepup.required(transaction_id, options, reason)
        return _answer(401, body, {"WWW-Authenticate": 'Passkey realm="transaction"'})

    async def finalize(self, request: Request) -> JSONObject:
        """A route for the front end: the assertion in, `{"token": …}` out (API errors as `detail`)."""
        try:
            credential = await request.json()
        except ValueError:
            raise HTTPException(
                400, {"title": "unable to process request", "details": "", "status": 400}
            ) from None
        if not isinstance(credential, dict):
            raise HTTPException(400, {"title": "unable to process request", "details": "", "status": 400})
        try:
            return {"token": await self.client.transaction_finalize(credential)}
        except ApiError as exc:
            raise HTTPException(exc.status if exc.status < 500 else 502, exc.problem()) from None
        except PasskeyError as exc:
            raise HTTPException(502, exc.problem()) from None
