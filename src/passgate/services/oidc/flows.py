"""The provider's flows: what each endpoint does, with the person's passkey check in the middle.

Authorization (OIDC Core §3.1.2): the request is validated first (authlib); an invalid client or
redirect URI is an error page, never a redirect. Then:

- no session: the built-in sign-in page, and back (`prompt=none`: `login_required`);
- `prompt=login`, a `max_age` older than the session's last passkey check, or `acr_values` naming the
  user-verified class when the session has no user-verified check within `PASSGATE_STEPUP_MAX_AGE`
  (the step-up rule, services/stepup.py): a real passkey re-check with user verification on the
  sign-in page, and back with the new `auth_time` (`prompt=none`: `login_required`). The way back
  carries `passgate_check`, the time the re-check was asked for, signed: a check at or after it
  satisfies the request; nothing else does;
- a client not marked trusted, on first use or for more scopes: the consent page (`prompt=none`:
  `consent_required`); the decision is remembered per user and client, revocable on the account page.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import AccessDeniedError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from sqlalchemy import Connection

from passgate.errors import NotFound
from passgate.oidc.claims import ACR_VALUES, CLAIMS, acr_for, wants_uv
from passgate.oidc.clients import SCOPES, Client
from passgate.oidc.server import Answer, Authorized, Call, Provider
from passgate.services import revocation, stepup
from passgate.services.context import Context
from passgate.services.oidc import registry
from passgate.services.oidc.storage import Store
from passgate.services.sessions import Current
from passgate.store import audit
from passgate.store import oidc as rows
from passgate.store.database import now

AUTHORIZE_PATH = "/oidc/authorize"
CHECK_PARAM = "passgate_check"
CHECK_TTL = 900  # seconds a re-check request stays good for
CONSENT_FIELD = "consent_token"


@dataclass(frozen=True, slots=True)
class SignInNeeded:
    """Send the person to the sign-in page (`reauth`: a re-check of the signed-in session)."""

    url: str


@dataclass(frozen=True, slots=True)
class ConsentNeeded:
    client_name: str
    client_id: str
    scopes: list[str]
    params: list[tuple[str, str]]  # the authorization request, carried by the consent form
    token: str  # binds the form to this session, client and scope
    redirect_origin: str


Outcome = Answer | SignInNeeded | ConsentNeeded


def authorized(current: Current) -> Authorized:
    session, user = current.session, current.user
    return Authorized(
        user_id=user.id,
        user_name=user.user_name,
        display_name=user.display_name,
        email=user.email,
        session_id=session.id,
        auth_time=session.auth_time,
        amr=session.amr,
        acr=acr_for(session.user_verified),
    )


async def authorize(ctx: Context, call: Call, current: Current | None, consent: str | None = None) -> Outcome:
    """One authorization request (GET or POST), or (`consent` = allow/deny) the consent form's answer."""

    def work(connection: Connection) -> Outcome:
        provider = registry.state(ctx).provider(Store(connection, ctx))
        user = authorized(current) if current is not None else None
        try:
            request, grant = provider.check_authorization(call, user)
        except OAuth2Error as error:
            return provider.error(None, error)
        data: dict[str, str] = request.payload.data
        params = [(name, value) for name, value in _params(call) if name not in (CONSENT_FIELD, "consent")]
        if current is None or user is None:
            return SignInNeeded(_signin_url(ctx, params, request.client, reauth=False))
        prompts = (data.get("prompt") or "").split()
        if _needs_check(ctx, current, data, prompts, request.client):
            if "none" in prompts:
                return provider.error(request, _redirected(LoginRequiredError, grant, data))
            return SignInNeeded(_signin_url(ctx, params, request.client, reauth=True))
        client: Client = request.client
        scope = request.scope or ""
        if not client.config.trusted:
            remembered = rows.consent(connection, user.user_id, client.client_id)
            covered = remembered is not None and set(scope.split()) <= set(remembered.split())
            token = _consent_token(ctx, current, client.client_id, scope)
            if consent == "deny" and hmac.compare_digest(data.get(CONSENT_FIELD, ""), token):
                return provider.error(request, _redirected(AccessDeniedError, grant, data))
            allowed = consent == "allow" and hmac.compare_digest(data.get(CONSENT_FIELD, ""), token)
            if not allowed and (not covered or "consent" in prompts):
                if "none" in prompts:
                    return provider.error(request, _redirected(ConsentRequiredError, grant, data))
                return ConsentNeeded(
                    client_name=client.name,
                    client_id=client.client_id,
                    scopes=scope.split(),
                    params=params,
                    token=token,
                    redirect_origin=_origin(grant.redirect_uri),
                )
            if allowed:
                _remember(connection, ctx, current, client.client_id, scope, "oidc_consent_granted")
        elif rows.consent(connection, user.user_id, client.client_id) is None:
            _remember(connection, ctx, current, client.client_id, scope, "oidc_signed_in")
        return provider.authorize(request, grant, user)

    return await ctx.db.run(work)


def _params(call: Call) -> list[tuple[str, str]]:
    return call.form if call.method == "POST" else call.query


def _redirected(kind: type[OAuth2Error], grant: Any, data: dict[str, str]) -> OAuth2Error:
    return kind(redirect_uri=grant.redirect_uri, state=data.get("state"))


def _needs_check(
    ctx: Context, current: Current, data: dict[str, str], prompts: list[str], client: Client
) -> bool:
    if _checked_since_asked(ctx, current, data.get(CHECK_PARAM), client.client_id):
        return False
    if "login" in prompts:
        return True
    max_age = data.get("max_age")
    if max_age is not None:
        if not max_age.isdigit():
            return True  # unreadable: ask, rather than skip the check the client wanted
        if now() - current.session.auth_time > int(max_age):
            return True
    return wants_uv(data.get("acr_values")) and not stepup.is_recent(current, ctx.settings.stepup_max_age)


def _signin_url(ctx: Context, params: list[tuple[str, str]], client: Client, *, reauth: bool) -> str:
    back = [item for item in params if item[0] != CHECK_PARAM]
    back.append((CHECK_PARAM, _check_marker(ctx, int(now() * 1000), client.client_id)))
    query = {"return_to": f"{AUTHORIZE_PATH}?{urlencode(back)}"}
    if reauth:
        query["reauth"] = "1"
    return f"/signin?{urlencode(query)}"


def _mac(ctx: Context, text: str) -> str:
    return hmac.new(ctx.keys[0], b"passgate-oidc:" + text.encode(), hashlib.sha256).hexdigest()[:32]


def _check_marker(ctx: Context, at: int, client_id: str) -> str:
    return f"{at}.{_mac(ctx, f'check:{at}:{client_id}')}"


def _checked_since_asked(ctx: Context, current: Current, marker: str | None, client_id: str) -> bool:
    """A user-verified passkey check at or after the (signed) moment the re-check was asked for."""
    if not marker or "." not in marker:
        return False
    at_text, mac = marker.split(".", 1)
    if not at_text.isdigit() or not hmac.compare_digest(mac, _mac(ctx, f"check:{at_text}:{client_id}")):
        return False
    asked = int(at_text) / 1000  # milliseconds: a check in the same second as the request is no check
    session = current.session
    return now() - asked <= CHECK_TTL and session.user_verified and session.auth_time > asked


def _consent_token(ctx: Context, current: Current, client_id: str, scope: str) -> str:
    return _mac(ctx, f"consent:{current.session.id}:{client_id}:{scope}")


def _origin(uri: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else ""


def _remember(
    connection: Connection, ctx: Context, current: Current, client_id: str, scope: str, kind: str
) -> None:
    at = now()
    rows.save_consent(connection, current.user.id, client_id, scope, at)
    audit.record(
        connection,
        tenant_id=ctx.tenant_id,
        user_id=current.user.id,
        session_id=current.session.id,
        kind=kind,
        at=at,
        client=client_id,
        scope=scope,
    )


# ------------------------------------------------------------------------------ token-side endpoints


async def token(ctx: Context, call: Call) -> Answer:
    return await ctx.db.run(lambda connection: _provider(connection, ctx).token(call))


async def revoke(ctx: Context, call: Call) -> Answer:
    return await ctx.db.run(lambda connection: _endpoint(connection, ctx, "revocation", call))


async def introspect(ctx: Context, call: Call) -> Answer:
    return await ctx.db.run(lambda connection: _endpoint(connection, ctx, "introspection", call))


def _endpoint(connection: Connection, ctx: Context, name: str, call: Call) -> Answer:
    answer = _provider(connection, ctx).endpoint(name, call)
    assert answer is not None
    return answer


def _provider(connection: Connection, ctx: Context) -> Provider:
    return registry.state(ctx).provider(Store(connection, ctx))


async def userinfo(ctx: Context, call: Call) -> Answer:
    """OIDC Core §5.3: the claims of the access token's scopes; 401 with `WWW-Authenticate: Bearer
    error="invalid_token"` for a missing, unknown, expired or revoked token (RFC 6750 §3)."""

    def work(connection: Connection) -> Answer:
        provider = _provider(connection, ctx)
        try:
            issued = provider.bearer(call)
        except OAuth2Error as error:
            status = 403 if error.error == "insufficient_scope" else 401
            code = error.error if status == 403 else "invalid_token"
            challenge = f'Bearer realm="{ctx.settings.public_url}", error="{code}"'
            return Answer(
                status, {"error": code}, [("WWW-Authenticate", challenge), ("Cache-Control", "no-store")]
            )
        return Answer(200, provider.user_info(issued.user, issued.scope), [("Cache-Control", "no-store")])

    return await ctx.db.run(work, write=False)


# ------------------------------------------------------------------------------------------- logout


@dataclass(frozen=True, slots=True)
class LogoutConfirm:
    """Ask the person before signing them out (no valid `id_token_hint`: OpenID Connect RP-Initiated
    Logout 1.0 §6, OWASP ASVS 5.0 V10.6.2)."""

    client_name: str | None
    params: list[tuple[str, str]]


async def logout(
    ctx: Context, call: Call, current: Current | None, confirmed: bool
) -> Answer | LogoutConfirm:
    """End-session: signs the person out of Passgate (the one way sessions end: services/revocation.py)
    and revokes what that session authorized, then goes to `post_logout_redirect_uri` when it is
    registered for the client named by the hint (with `state`)."""

    def end(connection: Connection, claims: dict[str, Any] | None, client: Client | None) -> None:
        if current is None:
            return
        rows.remove_grants(connection, rows.grants_of_session(connection, current.session.id))
        revocation.end_session_now(connection, ctx, current, reason="oidc_logout")

    def work(connection: Connection) -> Answer | LogoutConfirm:
        store = Store(connection, ctx, end_session=lambda claims, client: end(connection, claims, client))
        provider = registry.state(ctx).provider(store)
        try:
            request = provider.check_logout(call)
        except OAuth2Error as error:
            return provider.error(None, error)
        claims = request.id_token_claims
        hinted = claims is not None and (current is None or claims.get("sub") == current.user.id)
        if current is not None and not hinted and not confirmed:
            name = request.client.name if request.client is not None else None
            return LogoutConfirm(client_name=name, params=_params(call))
        answer = provider.logout(request)
        return answer or Answer(303, "", [("Location", "/signin?signed_out=1")])

    return await ctx.db.run(work)


# ---------------------------------------------------------------------------------- documents, keys


def discovery(ctx: Context) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3: only what is really supported."""
    issuer = registry.state(ctx).issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}{AUTHORIZE_PATH}",
        "token_endpoint": f"{issuer}/oidc/token",
        "userinfo_endpoint": f"{issuer}/oidc/userinfo",
        "jwks_uri": f"{issuer}/oidc/jwks",
        "end_session_endpoint": f"{issuer}/oidc/logout",
        "revocation_endpoint": f"{issuer}/oidc/revoke",
        "introspection_endpoint": f"{issuer}/oidc/introspect",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": list(CLAIMS),
        "acr_values_supported": list(ACR_VALUES),
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
    }


def jwks(ctx: Context) -> dict[str, Any]:
    return registry.state(ctx).keys.jwks


def cors_origins(ctx: Context) -> frozenset[str]:
    """Origins of the configured clients' redirect URIs (clients added by command: see `allows_origin`)."""
    return frozenset(
        origin for client in registry.state(ctx).configured.values() for origin in client.origins()
    )


async def allows_origin(ctx: Context, origin: str) -> bool:
    if origin in cors_origins(ctx):
        return True

    def work(connection: Connection) -> bool:
        return any(origin in client.origins() for client, _ in registry.every(connection, ctx))

    return await ctx.db.run(work, write=False)


# ---------------------------------------------------------------------------------------- the account


async def apps(ctx: Context, current: Current) -> list[dict[str, Any]]:
    """The apps this person signed in to, with what they allowed each to see."""

    def work(connection: Connection) -> list[dict[str, Any]]:
        found = []
        for item in rows.consents_of(connection, current.user.id):
            client = registry.find(connection, ctx, item["client_id"])
            found.append(
                {
                    "client_id": item["client_id"],
                    "name": client.name if client else item["client_id"],
                    "scopes": item["scope"].split(),
                    "granted_at": item["granted_at"],
                }
            )
        return found

    return await ctx.db.run(work, write=False)


async def revoke_app(ctx: Context, current: Current, client_id: str) -> None:
    """Forget the consent and revoke every token the app holds for this person."""

    def work(connection: Connection) -> None:
        if not rows.remove_consent(connection, current.user.id, client_id):
            raise NotFound("No such app.", code="app_not_found")
        rows.remove_grants(connection, rows.grants_of_user_client(connection, current.user.id, client_id))
        audit.record(
            connection,
            tenant_id=ctx.tenant_id,
            user_id=current.user.id,
            session_id=current.session.id,
            kind="oidc_consent_revoked",
            at=time.time(),
            client=client_id,
        )

    await ctx.db.run(work)
