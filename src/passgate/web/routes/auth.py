"""`/auth`: sign-up, sign-in, who am I, sign-out, and turning a token into a cookie."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from passgate.errors import NotAuthenticated
from passgate.services import login, registration, revocation, sessions, stepup
from passgate.services.sessions import Current
from passgate.services.sessions import SignedIn as SignedInResult
from passgate.services.stepup import Action, acts
from passgate.web import cookies
from passgate.web.deps import Caller, Ctx, MaybeSignedIn, SignedIn
from passgate.web.ratelimit import limit
from passgate.web.schemas import (
    AuthenticationCredential,
    LoginBegin,
    RegisterBegin,
    RegistrationCredential,
    TokenBody,
)

router = APIRouter(prefix="/auth", tags=["auth"])
ceremony_limit = [Depends(limit("ceremony"))]


def signed_in_response(ctx: Ctx, result: SignedInResult, message: str) -> JSONResponse:
    response = JSONResponse(
        {
            "status": "success",
            "message": message,
            "user_id": result.user.id,
            "user_name": result.user.user_name,
        }
    )
    cookies.set_session(response, ctx, result)
    return response


@router.post("/register/begin", dependencies=ceremony_limit, summary="Begin sign-up")
@acts(Action.SIGN_UP)
async def register_begin(body: RegisterBegin, ctx: Ctx, client: Caller) -> dict[str, Any]:
    """Creation options (`{"publicKey": …}`) for a new account and its first passkey. `409 user_name_taken`
    when the name exists; `403 signup_closed` when sign-up is closed."""
    return await registration.begin(
        ctx, user_name=body.user_name, display_name=body.display_name, client=client
    )


@router.post("/register/finish", summary="Finish sign-up")
@acts(Action.SIGN_UP)
async def register_finish(body: RegistrationCredential, ctx: Ctx, client: Caller) -> JSONResponse:
    """Body: `credential.toJSON()` of the new passkey. Creates the account and passkey and signs in
    (sets the session cookie)."""
    result = await registration.finish(ctx, credential=body.model_dump(exclude_none=True), client=client)
    return signed_in_response(ctx, result, "Account created")


@router.post("/login/begin", dependencies=ceremony_limit, summary="Begin sign-in")
@acts(Action.SIGN_IN)
async def login_begin(
    ctx: Ctx, client: Caller, current: MaybeSignedIn, body: LoginBegin | None = None
) -> dict[str, Any]:
    """Request options. Without `user_name`: usernameless (empty `allowCredentials`), usable with
    `mediation: "conditional"`. When already signed in, finishing re-checks (step-up) the same session."""
    user_name = body.user_name if body else None
    return await login.begin(ctx, user_name=user_name, current=current, client=client)


@router.post("/login/finish", summary="Finish sign-in")
@acts(Action.SIGN_IN)
async def login_finish(
    body: AuthenticationCredential, ctx: Ctx, client: Caller, current: MaybeSignedIn
) -> JSONResponse:
    """Body: `credential.toJSON()`. Verifies it and signs in (cookie). Every failure is
    `400 sign_in_failed` with the same message."""
    result = await login.finish(
        ctx, credential=body.model_dump(exclude_none=True), client=client, current=current
    )
    return signed_in_response(ctx, result, "Signed in")


@router.get("/me", summary="Who am I")
async def me(current: SignedIn, ctx: Ctx) -> dict[str, Any]:
    """The signed-in user and their session's last passkey check (`auth_time`, seconds since the epoch)."""
    return me_json(current, ctx)


def me_json(current: Current, ctx: Ctx) -> dict[str, Any]:
    user, session = current.user, current.session
    return {
        "user_id": user.id,
        "user_name": user.user_name,
        "display_name": user.display_name,
        "session_id": session.id,
        "auth_time": int(session.auth_time),
        "amr": session.amr.split(),
        "user_verified": session.user_verified,
        "stepup_fresh": stepup.is_recent(current, ctx.settings.stepup_max_age),
    }


@router.post("/logout", summary="Sign out here")
@acts(Action.SIGN_OUT)
async def logout(ctx: Ctx, current: MaybeSignedIn) -> JSONResponse:
    """Ends this session (if any) and clears the cookie. Always succeeds."""
    if current is not None:
        await revocation.sign_out(ctx, current)
    response = JSONResponse({"status": "success", "message": "Logged out successfully"})
    cookies.clear_session(response, ctx)
    return response


@router.post("/logout-all", summary="Sign out everywhere")
@acts(Action.END_ALL_SESSIONS)
async def logout_all(ctx: Ctx, current: SignedIn) -> JSONResponse:
    """Ends every session of this user and revokes their outstanding device links."""
    ended = await revocation.sign_out_everywhere(ctx, current)
    response = JSONResponse(
        {"status": "success", "message": "Signed out everywhere", "sessions_ended": ended}
    )
    cookies.clear_session(response, ctx)
    return response


@router.post("/set-session", summary="Token to cookie")
@acts(Action.SET_SESSION_COOKIE)
async def set_session(ctx: Ctx, request: Request, body: TokenBody | None = None) -> JSONResponse:
    """Turns a session token (from a WebSocket ceremony) given in the body or as `Authorization: Bearer`
    into the session cookie."""
    token = body.token if body and body.token else None
    header = request.headers.get("authorization", "")
    if not token and header.lower().startswith("bearer "):
        token = header[7:].strip()
    if not token:
        raise NotAuthenticated("No session token provided.", code="token_required")
    current = await sessions.authenticate(ctx, token)
    response = JSONResponse(
        {"status": "success", "message": "Session cookie set successfully", "user_id": current.user.id}
    )
    result = SignedInResult(user=current.user, session=current.session, token=token)
    cookies.set_session(response, ctx, result)
    return response
