"""OpenID Connect provider endpoints: discovery, JWKS, authorization (with the consent page), token,
userinfo, revocation, introspection and RP-initiated logout. The protocol is `passgate.oidc`; the flows
are `services/oidc/flows.py`; this module only turns HTTP into `Call` and `Answer` back into HTTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from passgate.oidc.server import Answer, Call
from passgate.services.oidc import flows
from passgate.services.oidc.flows import ConsentNeeded, LogoutConfirm, SignInNeeded
from passgate.services.sessions import Current
from passgate.services.stepup import Action, acts
from passgate.web import cookies
from passgate.web.deps import Ctx, MaybeSignedIn, SignedIn
from passgate.web.oidc_strings import OIDC_PAGE
from passgate.web.routes.pages import _me
from passgate.web.strings import page_strings, pick_locale, script_strings
from passgate.web.templating import render

router = APIRouter(tags=["openid-connect"])
NO_STORE = {"cache-control": "no-store"}
FORM = "application/x-www-form-urlencoded"


async def _call(request: Request) -> Call:
    """The request as the protocol sees it: the URL on the issuer (PASSGATE_PUBLIC_URL), headers, the
    query and a urlencoded form (anything else in a body is ignored)."""
    settings = request.app.state.ctx.settings
    url = settings.public_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    form: list[tuple[str, str]] = []
    if request.method == "POST" and request.headers.get("content-type", "").split(";")[0].strip() == FORM:
        form = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    query = parse_qsl(request.url.query, keep_blank_values=True)
    return Call(request.method, url, dict(request.headers), query, form)


def _http(answer: Answer, *, post: bool = False) -> Response:
    headers = {name: value for name, value in answer.headers if name.lower() != "content-type"}
    if answer.location is not None:
        # RFC 9700 §4.12: after a POST, 303 so the browser does not post the form to the client again.
        headers.pop("Location", None)
        return RedirectResponse(answer.location, status_code=303 if post else 302, headers=headers)
    if isinstance(answer.body, dict):
        return JSONResponse(answer.body, status_code=answer.status, headers=headers)
    return Response(str(answer.body), status_code=answer.status, headers=headers)


def _page(request: Request, template: str, me: Current | None, **values: Any) -> HTMLResponse:
    locale = pick_locale(request.headers.get("accept-language"))
    config = {"page": "oidc", "locale": locale, "strings": script_strings(locale), "me": _me(me)}
    t = {**page_strings(locale), **OIDC_PAGE}
    response = render(
        request,
        template,
        page="oidc",
        script="oidc.js",
        me=_me(me),
        locale=locale,
        t=t,
        config=config,
        **values,
    )
    response.headers.update(NO_STORE)
    return response


async def _authorize(request: Request, ctx: Ctx, current: Current | None, consent: str | None) -> Response:
    post = request.method == "POST"
    outcome = await flows.authorize(ctx, await _call(request), current, consent)
    if isinstance(outcome, SignInNeeded):
        return RedirectResponse(outcome.url, status_code=303, headers=NO_STORE)
    if isinstance(outcome, ConsentNeeded):
        response = _page(
            request,
            "oidc_consent.html",
            current,
            client_name=outcome.client_name,
            scopes=[scope for scope in outcome.scopes if f"consent_scope_{scope}" in OIDC_PAGE],
            params=outcome.params,
            token=outcome.token,
            redirect_origin=outcome.redirect_origin,
        )
        # the form's answer is redirected to the client: allow that origin as a form target (CSP)
        targets = " ".join(["'self'", outcome.redirect_origin]).strip()
        response.headers["content-security-policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action {targets}"
        )
        return response
    if outcome.location is None and outcome.status >= 400:
        body = outcome.body if isinstance(outcome.body, dict) else {}
        error = dict(body) if isinstance(body, dict) else {}
        response = _page(
            request,
            "oidc_error.html",
            current,
            error=error.get("error", "invalid_request"),
            description=error.get("error_description", ""),
        )
        response.status_code = outcome.status
        return response
    answer = _http(outcome, post=post)
    answer.headers.update(NO_STORE)
    return answer


@router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata")
async def discovery(ctx: Ctx) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0: the issuer is `PASSGATE_PUBLIC_URL`, exactly."""
    return flows.discovery(ctx)


@router.get("/oidc/jwks", summary="ID token signing keys (JWKS)")
async def jwks(ctx: Ctx) -> dict[str, Any]:
    return flows.jwks(ctx)


@router.get("/oidc/authorize", summary="Authorization endpoint", response_class=HTMLResponse)
async def authorize_get(request: Request, ctx: Ctx, current: MaybeSignedIn) -> Response:
    """Code flow only (`response_type=code`, PKCE S256). Sends the person to sign in, re-check their
    passkey or consent when needed; answers with a redirect to the client carrying `code`, `state` and
    `iss`, or an error page when the client or redirect URI is not valid."""
    return await _authorize(request, ctx, current, None)


@router.post("/oidc/authorize", summary="Authorization endpoint (form post)", response_class=HTMLResponse)
@acts(Action.OIDC_AUTHORIZE)
async def authorize_post(request: Request, ctx: Ctx, current: MaybeSignedIn) -> Response:
    """The same as GET, with the parameters in a form body (OIDC Core §3.1.2.1)."""
    return await _authorize(request, ctx, current, None)


@router.post("/oidc/consent", summary="The consent page's answer", response_class=HTMLResponse)
@acts(Action.OIDC_GRANT_CONSENT)
async def consent(request: Request, ctx: Ctx, current: MaybeSignedIn) -> Response:
    """The authorization request again, with `consent=allow|deny` and the page's `consent_token`."""
    call = await _call(request)
    decision = dict(call.form).get("consent")
    return await _authorize(request, ctx, current, decision if decision in ("allow", "deny") else None)


@router.post("/oidc/token", summary="Token endpoint")
@acts(Action.OIDC_TOKEN)
async def token(request: Request, ctx: Ctx) -> Response:
    """`authorization_code` (with `code_verifier`) and `refresh_token` grants; the client authenticates
    as registered (`client_secret_basic`, `client_secret_post`, or `none` for public clients)."""
    return _http(await flows.token(ctx, await _call(request)))


@router.get("/oidc/userinfo", summary="UserInfo")
async def userinfo_get(request: Request, ctx: Ctx) -> Response:
    """Claims of the access token's scopes (`Authorization: Bearer …`)."""
    return _http(await flows.userinfo(ctx, await _call(request)))


@router.post("/oidc/userinfo", summary="UserInfo (POST)")
@acts(Action.OIDC_USERINFO)
async def userinfo_post(request: Request, ctx: Ctx) -> Response:
    return _http(await flows.userinfo(ctx, await _call(request)))


@router.post("/oidc/revoke", summary="Token revocation (RFC 7009)")
@acts(Action.OIDC_REVOKE_TOKEN)
async def revoke(request: Request, ctx: Ctx) -> Response:
    """Revoking a refresh token revokes its whole grant; an access token, itself."""
    return _http(await flows.revoke(ctx, await _call(request)))


@router.post("/oidc/introspect", summary="Token introspection (RFC 7662)")
@acts(Action.OIDC_INTROSPECT)
async def introspect(request: Request, ctx: Ctx) -> Response:
    """Confidential clients only; a client learns only about its own tokens (`active: false` else)."""
    return _http(await flows.introspect(ctx, await _call(request)))


async def _logout(request: Request, ctx: Ctx, current: Current | None) -> Response:
    call = await _call(request)
    confirmed = request.method == "POST" and dict(call.form).get("confirm") == "yes"
    outcome = await flows.logout(ctx, call, current, confirmed)
    if isinstance(outcome, LogoutConfirm):
        return _page(
            request, "oidc_logout.html", current, client_name=outcome.client_name, params=outcome.params
        )
    response = _http(outcome, post=request.method == "POST")
    response.headers.update(NO_STORE)
    if current is not None and outcome.status < 400:
        cookies.clear_session(response, ctx)
    return response


@router.get("/oidc/logout", summary="RP-initiated logout", response_class=HTMLResponse)
async def logout_get(request: Request, ctx: Ctx, current: MaybeSignedIn) -> Response:
    """OpenID Connect RP-Initiated Logout 1.0: with a valid `id_token_hint` for the signed-in person it
    signs out at once; otherwise it asks first. Redirects to a registered `post_logout_redirect_uri`
    (with `state`) only with a valid hint."""
    return await _logout(request, ctx, current)


@router.post("/oidc/logout", summary="RP-initiated logout (form post)", response_class=HTMLResponse)
@acts(Action.OIDC_END_SESSION)
async def logout_post(request: Request, ctx: Ctx, current: MaybeSignedIn) -> Response:
    return await _logout(request, ctx, current)


class AppRef(BaseModel):
    client_id: str = Field(min_length=1, max_length=100)


@router.post("/auth/apps/revoke", summary="Revoke an app", tags=["account"])
@acts(Action.OIDC_REVOKE_CONSENT)
async def revoke_app(body: AppRef, ctx: Ctx, current: SignedIn) -> dict[str, str]:
    """Forget what you allowed an app (OpenID Connect client) and revoke every token it holds for you.
    It asks again the next time you sign in to it."""
    await flows.revoke_app(ctx, current, body.client_id)
    return {"status": "success", "message": "App revoked"}
