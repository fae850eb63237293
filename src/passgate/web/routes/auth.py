"""`/auth`: sign-up, sign-in, who am I, sign-out, and turning a token into a cookie."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from passgate.errors import NotAuthenticated
from passgate.memo import Memo
from passgate.services import login, registration, revocation, sessions, stepup
from passgate.services.context import Context
from passgate.services.sessions import Current
from passgate.services.sessions import SignedIn as SignedInResult
from passgate.services.stepup import Action, acts
from passgate.store.database import now
from passgate.web import cookies, lanes
from passgate.web.deps import Ctx, MaybeSignedIn, SignedIn
from passgate.web.guard import answer_headers
from passgate.web.schemas import (
    AuthenticationCredential,
    CeremonyOptions,
    LoginBegin,
    Me,
    RegisterBegin,
    RegistrationCredential,
    SignedInAnswer,
    TokenBody,
)

router = APIRouter(prefix="/auth", tags=["auth"])
lane = lanes.Lanes(router)


def _signed_in(result: SignedInResult, message: str) -> dict[str, Any]:
    return {
        "status": "success",
        "message": message,
        "user_id": result.user.id,
        "user_name": result.user.user_name,
    }


def signed_in_answer(ctx: Context, result: SignedInResult, message: str) -> lanes.Answer:
    return lanes.Answer(_signed_in(result, message), cookies.session_cookie(ctx, result))


def signed_in_response(ctx: Context, result: SignedInResult, message: str) -> JSONResponse:
    response = JSONResponse(_signed_in(result, message))
    cookies.set_session(response, ctx, result)
    return response


@lane.post(
    "/register/begin", body=RegisterBegin, answer=CeremonyOptions, summary="Begin sign-up", limit="ceremony"
)
@acts(Action.SIGN_UP)
async def register_begin(call: lanes.Call, body: RegisterBegin) -> lanes.Answer:
    """Creation options (`{"publicKey": …}`) for a new account and its first passkey. `409 user_name_taken`
    when the name exists; `403 signup_closed` when sign-up is closed."""
    options = await registration.begin(
        call.ctx, user_name=body.user_name, display_name=body.display_name, client=call.client
    )
    return lanes.Answer(options)


@lane.post("/register/finish", body=RegistrationCredential, answer=SignedInAnswer, summary="Finish sign-up")
@acts(Action.SIGN_UP)
async def register_finish(call: lanes.Call, body: RegistrationCredential) -> lanes.Answer:
    """Body: `credential.toJSON()` of the new passkey. Creates the account and passkey and signs in
    (sets the session cookie)."""
    credential = body.model_dump(exclude_none=True)
    result = await registration.finish(call.ctx, credential=credential, client=call.client)
    return signed_in_answer(call.ctx, result, "Account created")


@lane.post(
    "/login/begin",
    body=LoginBegin,
    optional=True,
    answer=CeremonyOptions,
    summary="Begin sign-in",
    limit="ceremony",
)
@acts(Action.SIGN_IN)
async def login_begin(call: lanes.Call, body: LoginBegin | None) -> lanes.Answer:
    """Request options. Without `user_name`: usernameless (empty `allowCredentials`), usable with
    `mediation: "conditional"`. When already signed in, finishing re-checks (step-up) the same session."""
    user_name = body.user_name if body else None
    current = await call.maybe_signed_in()
    return lanes.Answer(await login.begin(call.ctx, user_name=user_name, current=current, client=call.client))


@lane.post("/login/finish", body=AuthenticationCredential, answer=SignedInAnswer, summary="Finish sign-in")
@acts(Action.SIGN_IN)
async def login_finish(call: lanes.Call, body: AuthenticationCredential) -> lanes.Answer:
    """Body: `credential.toJSON()`. Verifies it and signs in (cookie). Every failure is
    `400 sign_in_failed` with the same message."""
    current = await call.maybe_signed_in()
    credential = body.model_dump(exclude_none=True)
    result = await login.finish(call.ctx, credential=credential, client=call.client, current=current)
    return signed_in_answer(call.ctx, result, "Signed in")


@lane.get("/me", answer=Me, summary="Who am I")
async def me(call: lanes.Call, _body: None) -> lanes.Answer:
    """The signed-in user and their session's last passkey check (`auth_time`, seconds since the epoch)."""
    mark = call.ctx.db.version()  # before the read: a write meanwhile makes what is kept stale at once
    current = await call.signed_in()
    fresh = stepup.is_recent(current, call.ctx.settings.stepup_max_age)
    body = lanes.encode(me_json(current, fresh))
    remembered: RememberedMe = call.scope["app"].state.remembered_me
    remembered.keep(call.scope, mark, current, fresh, body)
    return lanes.Answer(body)


class RememberedMe:
    """`GET /auth/me` answered again from memory, in front of its lane: a front end asks it on every page
    load. Kept per session token: the bytes the lane answered, for as long as they are what the lane
    would answer. That is, while the database is unchanged (`Database.version`, as `sessions.authenticate`
    keeps its reads: at once for this process's writes, within milliseconds for another's), and before
    the first moment time alone changes the answer: the token or session expiring, the idle timeout,
    the next last-seen update (`sessions.quiet_until`), the step-up check going stale. Any other request
    goes to the lane."""

    def __init__(self, lane: ASGIApp, ctx: Context, cookie: cookies.SessionCookie):
        self.lane = lane
        self.ctx = ctx
        self.cookie = cookie
        self.headers = [(b"content-type", b"application/json"), *answer_headers(ctx.settings)]
        self._answers: Memo[str, tuple[int, float, bytes]] = Memo(4096, longest=cookies.LONGEST_COOKIE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._recall(scope)
        if body is None:
            await self.lane(scope, receive, send)
            return
        headers = [*self.headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _recall(self, scope: Scope) -> bytes | None:
        mark = self.ctx.db.version()
        if mark is None:  # nothing can tell whether the database changed
            return None
        try:
            token = self.cookie.in_headers(scope["headers"])
        except NotAuthenticated:  # the cookie twice: the lane refuses it
            return None
        known = self._answers.get(token) if token else None
        if known is None or known[0] != mark or now() >= known[1]:
            return None
        return known[2]

    def keep(self, scope: Scope, mark: int | None, current: Current, fresh: bool, body: bytes) -> None:
        token = self.cookie.in_headers(scope["headers"])
        if mark is None or not token:
            return
        until = sessions.quiet_until(self.ctx, current, self.ctx.tokens.verify(token).expires_at)
        if fresh:
            until = min(until, stepup.recent_until(current, self.ctx.settings.stepup_max_age))
        self._answers.remember(token, (mark, until, body), size=len(token))


def me_json(current: Current, stepup_fresh: bool) -> dict[str, Any]:
    user, session = current.user, current.session
    return {
        "user_id": user.id,
        "user_name": user.user_name,
        "display_name": user.display_name,
        "session_id": session.id,
        "auth_time": int(session.auth_time),
        "amr": session.amr.split(),
        "user_verified": session.user_verified,
        "stepup_fresh": stepup_fresh,
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
