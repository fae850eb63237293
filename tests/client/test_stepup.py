"""The step-up helpers end to end: a FastAPI app (dependency) and a Flask app (decorator) protect
`POST /transfer` with "a passkey check with UV newer than N seconds, for this transaction", against a
real `passgate serve`; the test plays the browser with the software authenticator.

No `from __future__ import annotations` here: FastAPI would then resolve the routes' annotations in
the module's namespace, where a dependency made inside a function is not."""

import asyncio
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import flask
import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from clientkit import BROWSER_ORIGIN, RemoteTenant
from passgate.client import AsyncPasskeyClient, PasskeyClient, TokenClaims
from passgate.client import fastapi as fastapi_stepup
from passgate.client import flask as flask_stepup
from softkey import SoftAuthenticator

Send = Callable[..., Any]  # (path, json, headers) -> (status, body)


def fastapi_app(tenant: RemoteTenant) -> FastAPI:
    passkeys = AsyncPasskeyClient(tenant.base_url, tenant.id, tenant.api_key, audience="localhost")
    stepup = fastapi_stepup.PasskeyStepUp(passkeys, user_id=lambda request: request.headers.get("x-user"))
    app = FastAPI()
    app.post("/passkey/transaction/finalize")(stepup.finalize)

    @app.post("/transfer")
    async def transfer(request: Request, claims: Annotated[TokenClaims, Depends(stepup.require())]) -> Any:
        return {"done": await request.json(), "by": claims.subject}

    @app.post("/fleeting")
    async def fleeting(claims: Annotated[TokenClaims, Depends(stepup.require(max_age=1))]) -> Any:
        return {"by": claims.subject}

    return app


def flask_app(tenant: RemoteTenant) -> flask.Flask:
    passkeys = PasskeyClient(tenant.base_url, tenant.id, tenant.api_key, audience="localhost")
    stepup = flask_stepup.PasskeyStepUp(passkeys, user_id=lambda: flask.request.headers.get("x-user"))
    app = flask.Flask(__name__)
    app.add_url_rule("/passkey/transaction/finalize", view_func=stepup.finalize, methods=["POST"])

    @app.post("/transfer")
    @stepup.required()
    def transfer() -> Any:
        return {"done": flask.request.get_json(), "by": flask.g.passkey_claims.subject}

    @app.post("/fleeting")
    @stepup.required(max_age=1)
    def fleeting() -> Any:
        return {"by": flask.g.passkey_claims.subject}

    return app


def registered(tenant: RemoteTenant) -> tuple[str, SoftAuthenticator]:
    user, browser = str(uuid.uuid4()), SoftAuthenticator()
    with PasskeyClient(tenant.base_url, tenant.id, tenant.api_key) as client:
        options = client.registration_initialize(user, user)
        client.registration_finalize(browser.create(options, origin=BROWSER_ORIGIN))
    return user, browser


async def exercise(send: Send, tenant: RemoteTenant) -> None:
    """What a front end does: try, check the passkey, finish, try again with the token."""
    user, browser = registered(tenant)
    me = {"x-user": user}
    status, asked = await send("/transfer", {"amount": 5}, me)
    assert status == 401 and asked["detail"]["title"] == "passkey check required", asked
    assert asked["detail"]["details"] == "no token" and asked["detail"]["publicKey"]["challenge"]
    assertion = browser.get(asked["detail"], origin=BROWSER_ORIGIN)
    status, finished = await send("/passkey/transaction/finalize", assertion, {})
    assert status == 200, finished
    token = {**me, "x-passkey-token": finished["token"]}
    assert await send("/transfer", {"amount": 5}, token) == (200, {"done": {"amount": 5}, "by": user})
    assert await send("/transfer", {"amount": 5}, token) == (200, {"done": {"amount": 5}, "by": user})

    status, refused = await send("/transfer", {"amount": 5000}, token)  # another transaction
    assert (status, refused["detail"]["details"]) == (401, "for another transaction")
    assert refused["detail"]["publicKey"]["challenge"]  # and a new check is offered
    other, _ = registered(tenant)
    status, refused = await send("/transfer", {"amount": 5}, {**token, "x-user": other})
    assert (status, refused["detail"]["details"]) == (401, "for another user")
    with PasskeyClient(tenant.base_url, tenant.id, tenant.api_key) as client:
        login = client.login_finalize(browser.get(client.login_initialize(user), origin=BROWSER_ORIGIN))
    status, refused = await send("/transfer", {"amount": 5}, {**me, "x-passkey-token": login})
    assert (status, refused["detail"]["details"]) == (401, "for another transaction")  # a login is no check
    status, refused = await send("/transfer", {"amount": 5}, {**me, "x-passkey-token": "forged"})
    assert status == 401 and refused["detail"]["details"].startswith("malformed token")

    assert (await send("/transfer", {"amount": 5}, {}))[0] == 401  # not signed in
    status, refused = await send("/transfer", {"amount": 5}, {"x-user": "no-passkey-yet"})
    assert (status, refused["detail"]["title"]) == (403, "no passkey to check")
    status, refused = await send("/passkey/transaction/finalize", assertion, {})  # each check finishes once
    assert (status, refused["detail"]["title"]) == (401, "failed to get session data")

    status, asked = await send("/fleeting", {}, me)
    status, finished = await send(
        "/passkey/transaction/finalize", browser.get(asked["detail"], origin=BROWSER_ORIGIN), {}
    )
    fresh = {**me, "x-passkey-token": finished["token"]}
    assert (await send("/fleeting", {}, fresh))[0] == 200
    await asyncio.sleep(2.1)
    status, refused = await send("/fleeting", {}, fresh)
    assert (status, refused["detail"]["details"]) == (401, "the passkey check is older than 1 s")


async def test_fastapi_dependency(remote_tenant: RemoteTenant) -> None:
    transport = httpx.ASGITransport(app=fastapi_app(remote_tenant))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as browser:

        async def send(path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
            response = await browser.post(path, json=body, headers=headers)
            return response.status_code, response.json()

        await exercise(send, remote_tenant)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_flask_decorator(remote_tenant: RemoteTenant) -> None:
    browser = flask_app(remote_tenant).test_client()

    async def send(path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        response = browser.post(path, json=body, headers=headers)
        return response.status_code, response.get_json()

    await exercise(send, remote_tenant)
