"""`/auth/ws/*`: the WebSocket ceremonies. Options go out as `{"publicKey": …}`; the client
answers with `credential.toJSON()`; success carries a session token for `POST /auth/set-session`.

Each ceremony counts once in the rate-limit group of its HTTP twin before it starts. Every failure is one
`{"status": "error", "message", "code"}` message and then a close code (RFC 6455 §7.4, docs/api.md):
1008 for a refused ceremony or unreadable message, 1003 for a binary frame, 1009 for a message over
`MAX_MESSAGE` (`passgate serve` refuses those in the WebSocket layer, before buffering them), 1013 for a
rate limit, 1011 for a fault on our side. Nothing else reaches the client: no trace, no 1006."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketState

from passgate.errors import BadRequest, PassgateError, PayloadTooLarge, RateLimited, ServiceUnavailable
from passgate.services import credentials, device_links, login, registration, sessions
from passgate.services.context import Context
from passgate.services.stepup import Action, acts
from passgate.web.deps import client_of, context_of, session_token
from passgate.web.guard import MAX_MESSAGE
from passgate.web.ratelimit import count
from passgate.web.schemas import AuthenticationCredential, RegistrationCredential

log = logging.getLogger("passgate.ws")
router = APIRouter(prefix="/auth/ws")

# Close codes (RFC 6455 §7.4.1; 1013 from the IANA WebSocket Close Code Number Registry).
CLOSE_REFUSED = 1008  # policy violation: the ceremony failed or a message was unreadable
CLOSE_BINARY = 1003  # unsupported data: the ceremonies speak JSON text only
CLOSE_TOO_BIG = 1009  # message too big
CLOSE_INTERNAL = 1011  # an unexpected condition on our side
CLOSE_TRY_LATER = 1013  # try again later: rate limited, or the database is busy or down


class BinaryFrame(BadRequest):
    code = "binary_not_supported"
    message = "Messages must be JSON text, not binary."


async def _receive(websocket: WebSocket, ctx: Context) -> dict[str, Any]:
    """The next message as a JSON object; BadRequest for anything else."""
    with anyio.fail_after(ctx.settings.ceremony_timeout_ms / 1000 + 5):
        message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if text is None:
        raise BinaryFrame()
    if len(text) > MAX_MESSAGE:
        raise PayloadTooLarge("Message too large.")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
        raise BadRequest("Messages must be JSON.", code="invalid_json") from None
    if not isinstance(value, dict):
        raise BadRequest("Messages must be JSON objects.", code="invalid_json")
    return value


async def _credential(websocket: WebSocket, ctx: Context, model: type[BaseModel]) -> dict[str, Any]:
    """The next message, validated like the HTTP finish bodies."""
    try:
        return model.model_validate(await _receive(websocket, ctx)).model_dump(exclude_none=True)
    except (ValidationError, RecursionError):
        raise BadRequest("The credential is malformed.", code="invalid_request") from None


def _close_code(exc: PassgateError) -> int:
    if isinstance(exc, RateLimited | ServiceUnavailable):
        return CLOSE_TRY_LATER
    if isinstance(exc, BinaryFrame):
        return CLOSE_BINARY
    if isinstance(exc, PayloadTooLarge):
        return CLOSE_TOO_BIG
    return CLOSE_REFUSED


async def _send(websocket: WebSocket, message: dict[str, Any]) -> None:
    """Send a message. A connection closed meanwhile is a disconnect: the client went away, or the
    WebSocket layer closed it (1009 for an oversized message) while the ceremony awaited the database,
    and the layer refuses any later message."""
    try:
        await websocket.send_json(message)
    except (OSError, RuntimeError) as exc:
        raise WebSocketDisconnect(1006) from exc


async def _fail(websocket: WebSocket, message: str, code: str, close_code: int) -> None:
    """Send the error message and close; quietly, when the client has gone already."""
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    with suppress(WebSocketDisconnect, OSError, RuntimeError):
        await websocket.send_json({"status": "error", "message": message, "code": code})
        await websocket.close(code=close_code)


async def _run(
    websocket: WebSocket, flow: Callable[[Context], Awaitable[dict[str, Any]]], group: str | None = None
) -> None:
    """Accept, count the attempt in `group`, run one ceremony, send its outcome or a safe error, close."""
    ctx = context_of(websocket)
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in ctx.settings.origins:  # cross-site WebSocket hijacking
        await websocket.close(code=1008)
        return
    await websocket.accept()
    try:
        if group is not None:
            await count(websocket, group)
        outcome = await flow(ctx)
        await _send(websocket, {"status": "success", **outcome})
        await websocket.close()
    except PassgateError as exc:
        if exc.detail:
            log.info("%s: %s", exc.code, exc.detail.encode("unicode_escape").decode("ascii")[:300])
        await _fail(websocket, exc.message, exc.code, _close_code(exc))
    except TimeoutError:
        await _fail(websocket, "Timed out.", "timeout", CLOSE_REFUSED)
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("WebSocket ceremony failed")
        await _fail(websocket, "Something went wrong on our side.", "internal_error", CLOSE_INTERNAL)


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
        await _send(websocket, options)
        result = await registration.finish(
            ctx, credential=await _credential(websocket, ctx, RegistrationCredential), client=client
        )
        return {"message": "User registered successfully", "token": result.token, "user_id": result.user.id}

    await _run(websocket, flow, "ceremony")


@router.websocket("/add_credential")
@acts(Action.ADD_PASSKEY)
async def add_credential(websocket: WebSocket) -> None:
    """Needs the session cookie. Sends options, receives the credential, confirms."""

    async def flow(ctx: Context) -> dict[str, Any]:
        current = await sessions.authenticate(ctx, session_token(websocket))
        options = await credentials.begin_add(ctx, current, client_of(websocket))
        await _send(websocket, options)
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
        await _send(websocket, options)
        result = await device_links.finish(
            ctx, await _credential(websocket, ctx, RegistrationCredential), client
        )
        return {"message": "Passkey added on this device", "token": result.token, "user_id": result.user.id}

    await _run(websocket, flow, "device")


@router.websocket("/authenticate")
@acts(Action.SIGN_IN)
async def authenticate(websocket: WebSocket) -> None:
    """Optional query `user_name`. Sends options, receives the assertion, returns a token."""

    async def flow(ctx: Context) -> dict[str, Any]:
        client = client_of(websocket)
        options = await login.begin(
            ctx, user_name=websocket.query_params.get("user_name"), current=None, client=client
        )
        await _send(websocket, options)
        result = await login.finish(
            ctx,
            credential=await _credential(websocket, ctx, AuthenticationCredential),
            client=client,
            current=None,
        )
        return {"message": "Authentication successful", "token": result.token, "user_id": result.user.id}

    await _run(websocket, flow, "ceremony")
