"""`/auth/ws/*`: seed 003's WebSocket ceremonies. Options go out as `{"publicKey": …}`; the client
answers with `credential.toJSON()`; success carries a session token for `POST /auth/set-session`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from passgate.errors import BadRequest, PassgateError, ServiceUnavailable
from passgate.services import credentials, device_links, login, registration, sessions
from passgate.services.context import Context
from passgate.services.stepup import Action, acts
from passgate.web.deps import client_of, context_of, session_token
from passgate.web.schemas import AuthenticationCredential, RegistrationCredential

router = APIRouter(prefix="/auth/ws")
MAX_MESSAGE = 64 * 1024


async def _receive(websocket: WebSocket, ctx: Context) -> dict[str, Any]:
    with anyio.fail_after(ctx.settings.ceremony_timeout_ms / 1000 + 5):
        text = await websocket.receive_text()
    if len(text) > MAX_MESSAGE:
        raise BadRequest("Message too large.", code="payload_too_large")
    try:
        value = json.loads(text)
    except ValueError:
        raise BadRequest("Messages must be JSON.", code="invalid_json") from None
    if not isinstance(value, dict):
        raise BadRequest("Messages must be JSON objects.", code="invalid_json")
    return value


async def _credential(websocket: WebSocket, ctx: Context, model: type[BaseModel]) -> dict[str, Any]:
    """The next message, validated like the HTTP finish bodies."""
    try:
        return model.model_validate(await _receive(websocket, ctx)).model_dump(exclude_none=True)
    except ValidationError:
        raise BadRequest("The credential is malformed.", code="invalid_request") from None


async def _run(websocket: WebSocket, flow: Callable[[Context], Awaitable[dict[str, Any]]]) -> None:
    """Accept, run one ceremony, send its outcome or a safe error, close."""
    ctx = context_of(websocket)
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in ctx.settings.origins:  # cross-site WebSocket hijacking
        await websocket.close(code=1008)
        return
    await websocket.accept()
    try:
        outcome = await flow(ctx)
        await websocket.send_json({"status": "success", **outcome})
        await websocket.close()
    except PassgateError as exc:
        await websocket.send_json({"status": "error", "message": exc.message, "code": exc.code})
        await websocket.close(code=1013 if isinstance(exc, ServiceUnavailable) else 1008)  # 1013: try later
    except TimeoutError:
        await websocket.send_json({"status": "error", "message": "Timed out.", "code": "timeout"})
        await websocket.close(code=1008)
    except WebSocketDisconnect:
        pass


@router.websocket("/register_new")
@acts(Action.SIGN_UP)
async def register_new(websocket: WebSocket) -> None:
    """Query: `user_name`, `display_name`. Sends options, receives the credential, returns a token."""

    async def flow(ctx: Context) -> dict[str, Any]:
        client = client_of(websocket)
        params = websocket.query_params
        options = await registration.begin(
            ctx,
            user_name=params.get("user_name", ""),
            display_name=params.get("display_name", ""),
            client=client,
        )
        await websocket.send_json(options)
        result = await registration.finish(
            ctx, credential=await _credential(websocket, ctx, RegistrationCredential), client=client
        )
        return {"message": "User registered successfully", "token": result.token, "user_id": result.user.id}

    await _run(websocket, flow)


@router.websocket("/add_credential")
@acts(Action.ADD_PASSKEY)
async def add_credential(websocket: WebSocket) -> None:
    """Needs the session cookie. Sends options, receives the credential, confirms."""

    async def flow(ctx: Context) -> dict[str, Any]:
        current = await sessions.authenticate(ctx, session_token(websocket))
        options = await credentials.begin_add(ctx, current, client_of(websocket))
        await websocket.send_json(options)
        record = await credentials.finish_add(
            ctx, current, await _credential(websocket, ctx, RegistrationCredential)
        )
        return {"message": "Passkey added", "credential": credentials.credential_json(record, current)}

    await _run(websocket, flow)


@router.websocket("/add_device_credential")
@acts(Action.USE_DEVICE_LINK)
async def add_device_credential(websocket: WebSocket) -> None:
    """First message `{"token": passphrase}`. Sends options, receives the credential, returns a token."""

    async def flow(ctx: Context) -> dict[str, Any]:
        client = client_of(websocket)
        first = await _receive(websocket, ctx)
        options = await device_links.begin(ctx, device_links.require_passphrase(first.get("token")), client)
        await websocket.send_json(options)
        result = await device_links.finish(
            ctx, await _credential(websocket, ctx, RegistrationCredential), client
        )
        return {"message": "Passkey added on this device", "token": result.token, "user_id": result.user.id}

    await _run(websocket, flow)


@router.websocket("/authenticate")
@acts(Action.SIGN_IN)
async def authenticate(websocket: WebSocket) -> None:
    """Optional query `user_name`. Sends options, receives the assertion, returns a token."""

    async def flow(ctx: Context) -> dict[str, Any]:
        client = client_of(websocket)
        options = await login.begin(
            ctx, user_name=websocket.query_params.get("user_name"), current=None, client=client
        )
        await websocket.send_json(options)
        result = await login.finish(
            ctx,
            credential=await _credential(websocket, ctx, AuthenticationCredential),
            client=client,
            current=None,
        )
        return {"message": "Authentication successful", "token": result.token, "user_id": result.user.id}

    await _run(websocket, flow)
