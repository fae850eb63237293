"""Pages: sign-in (passkey autofill), sign-up, the account, the add-a-device landing, the self-test,
the demo page at `/` (Sign Up / Sign In / Who Am I) and the "page not found" page for browsers.

Server-rendered with Jinja2 (autoescaped); every word comes from `web/strings.py`. Each page loads one
small ES module from `/static` that uses only the `/auth` API. The module's configuration (strings,
RP ID, the checked return URL…) travels as a JSON data block, so the CSP needs no inline script.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from passgate.ceremony.encoding import b64url_encode
from passgate.config import Settings
from passgate.errors import NotAuthenticated
from passgate.services import credentials, stepup
from passgate.services.oidc import flows as oidc_flows
from passgate.services.return_url import requested, safe_return_url
from passgate.services.sessions import Current
from passgate.services.stepup import Action
from passgate.store.database import now
from passgate.web import useragent
from passgate.web.deps import Ctx, MaybeSignedIn
from passgate.web.oidc_strings import OIDC_PAGE
from passgate.web.strings import page_strings, pick_locale, script_strings
from passgate.web.templating import render

router = APIRouter(include_in_schema=False)
NO_STORE = {"cache-control": "no-store"}


@dataclass(frozen=True, slots=True)
class ReturnTo:
    """The `return_to` / `rd` parameter after the allow-list check."""

    url: str | None = None  # safe to send the person to
    host: str | None = None  # what to show for it
    refused_host: str | None = None  # shown when a foreign URL was refused
    carry: str = ""  # query string that keeps it across the sign-in / sign-up links

    def page_values(self) -> dict[str, Any]:
        """What the sign-in and sign-up pages render, and what their module reads from its config."""
        return {
            "config": {"returnTo": self.url, "returnHost": self.host},
            "return_url": self.url,
            "return_host": self.host,
            "refused_host": self.refused_host,
            "carry": self.carry,
        }


def return_to(request: Request, settings: Settings) -> ReturnTo:
    raw = requested(request.query_params)  # `return_to`, `rd` or `next`
    if not raw:
        return ReturnTo()
    safe = safe_return_url(settings, raw)
    if safe is None:
        return ReturnTo(refused_host=(urlsplit(raw).hostname or raw)[:80])
    absolute = urlsplit(urljoin(settings.public_url + "/", safe))
    host = f"{absolute.netloc}{absolute.path}"[:80]
    return ReturnTo(url=safe, host=host, carry="?" + urlencode({"return_to": safe}))


def _page(
    request: Request,
    template: str,
    *,
    page: str,
    me: Current | None,
    config: Mapping[str, Any] | None = None,
    **values: Any,
) -> HTMLResponse:
    settings: Settings = request.app.state.ctx.settings
    locale = pick_locale(request.headers.get("accept-language"))
    page_config = {
        "page": page,
        "locale": locale,
        "rpId": settings.rp_id,
        "challengeTtl": settings.challenge_ttl,
        "strings": script_strings(locale),
        "me": _me(me),
        **(config or {}),
    }
    response = render(
        request,
        template,
        page=page,
        script=f"{page}.js",
        me=_me(me),
        locale=locale,
        t=page_strings(locale),
        config=page_config,
        **values,
    )
    response.headers.update(NO_STORE)
    return response


def _me(current: Current | None) -> dict[str, str] | None:
    if current is None:
        return None
    user = current.user
    return {
        "user_name": user.user_name,
        "display_name": user.display_name,
        "user_handle": b64url_encode(user.user_handle),  # the WebAuthn user.id, for the Signal API
    }


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, current: MaybeSignedIn) -> HTMLResponse:
    """The demo page: a random name, Sign Up, Sign In, Who Am I, Sign Out."""
    return _page(request, "index.html", page="index", me=current)


@router.get("/signin", response_class=HTMLResponse)
async def signin(request: Request, ctx: Ctx, current: MaybeSignedIn) -> HTMLResponse:
    return _page(
        request,
        "signin.html",
        page="signin",
        me=current,
        **return_to(request, ctx.settings).page_values(),
        signed_out=request.query_params.get("signed_out") == "1",
        reauth=request.query_params.get("reauth") == "1",  # forward-auth wants a fresher passkey check
    )


@router.get("/signup", response_class=HTMLResponse)
async def signup(request: Request, ctx: Ctx, current: MaybeSignedIn) -> HTMLResponse:
    return _page(
        request,
        "signup.html",
        page="signup",
        me=current,
        **return_to(request, ctx.settings).page_values(),
        registration_open=ctx.settings.registration_open,
    )


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, ctx: Ctx, current: MaybeSignedIn) -> Response:
    if current is None:
        return RedirectResponse("/signin?" + urlencode({"return_to": "/account"}), status_code=303)
    parts = await _account_parts(request, ctx, current)
    return _page(
        request,
        "account.html",
        page="account",
        me=current,
        config={
            "credentialIds": [key["id"] for key in parts["passkeys"]],
            # prefetch creation options only when they will be given (else the click asks for a check)
            "canAddPasskey": stepup.allows(ctx, current, Action.ADD_PASSKEY),
        },
        welcome=request.query_params.get("welcome") == "1",
        device_entry_url=f"{ctx.settings.public_url}/device",
        **parts,
    )


@router.get("/account/parts", response_class=HTMLResponse)
async def account_parts(request: Request, ctx: Ctx, current: MaybeSignedIn) -> HTMLResponse:
    """The account page's lists (warnings, passkeys, sessions) alone, swapped in after each change."""
    if current is None:
        raise NotAuthenticated()
    locale = pick_locale(request.headers.get("accept-language"))
    parts = await _account_parts(request, ctx, current)
    response = render(request, "_account_parts.html", t=page_strings(locale), **parts)
    response.headers.update(NO_STORE)
    return response


async def _account_parts(request: Request, ctx: Ctx, current: Current) -> dict[str, Any]:
    info = await credentials.account(ctx, current)
    t = page_strings(pick_locale(request.headers.get("accept-language")))
    aaguids: dict[str, Any] = info.get("aaguid_info", {})
    passkeys = [_passkey_view(item, aaguids.get(item["aaguid"]) or {}, t) for item in info["credentials"]]
    names = {key["id"]: key["name"] for key in passkeys}
    sessions = [_session_view(item, names, t) for item in info["sessions"]]
    sessions.sort(key=lambda item: (not item["current"], item["sort"]))
    warning = None
    if len(passkeys) == 1:
        warning = "one"
    elif passkeys and not any(key["backup_eligible"] for key in passkeys):
        warning = "device_bound"
    groups = info["user"].get("groups") or []
    links = [_link_view(item, t) for item in info["device_links"]]
    apps = await oidc_flows.apps(ctx, current)  # OpenID Connect clients signed in to, revocable
    return {
        "passkeys": passkeys,
        "sessions": sessions,
        "warning": warning,
        "groups": groups,
        "links": links,
        "apps": apps,
        "oidc_t": OIDC_PAGE,
    }


def _link_view(item: Mapping[str, Any], t: Mapping[str, str]) -> dict[str, Any]:
    if item["created_by"] == "admin":
        by = t["links_by_admin"]
    else:
        by = t["links_by_this"] if item["by_this_session"] else t["links_by_other"]
    expires = datetime.fromisoformat(item["expires_at"]).strftime("%Y-%m-%d %H:%M UTC")
    return {"id": item["link_id"], "by": by, "created": ago(item["created_at"], t), "expires": expires}


def _passkey_view(
    item: Mapping[str, Any], authenticator: Mapping[str, Any], t: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "id": item["credential_id"],
        "name": item["name"],
        "custom_name": item.get("custom_name") or "",
        "authenticator": item.get("authenticator"),
        "icon_light": authenticator.get("icon_light"),
        "icon_dark": authenticator.get("icon_dark"),
        "synced": bool(item.get("synced")),
        "backup_eligible": bool(item.get("backup_eligible")),
        "current": bool(item.get("is_current_session")),
        "flagged": bool(item.get("flagged")),
        "created": ago(item.get("created_at"), t),
        "created_iso": item.get("created_at"),
        "last_used": ago(item.get("last_used"), t) if item.get("last_used") else None,
        "last_used_iso": item.get("last_used"),
    }


def _session_view(item: Mapping[str, Any], names: Mapping[str, str], t: Mapping[str, str]) -> dict[str, Any]:
    credential_id = item.get("credential_id")
    device = useragent.describe(item.get("user_agent") or "", t["session_browser_on"])
    return {
        "id": item["session_id"],
        "device": device or t["session_unknown_device"],
        "ip": item.get("ip") or "?",
        "created": ago(item.get("created_at"), t),
        "active": ago(item.get("last_seen"), t),
        "current": bool(item.get("is_current")),
        "passkey": names.get(credential_id) if credential_id else None,
        "passkey_removed": bool(credential_id) and credential_id not in names,
        "sort": -_timestamp(item.get("last_seen")),
    }


def _timestamp(iso: str | None) -> float:
    if not iso:
        return 0.0
    return datetime.fromisoformat(iso).timestamp()


def ago(iso: str | None, t: Mapping[str, str]) -> str:
    """A past moment in words: "just now", "5 minutes ago", "yesterday", "on 2026-01-31"."""
    if not iso:
        return t["unknown"]
    seconds = max(0.0, now() - _timestamp(iso))
    minutes, hours, days = int(seconds // 60), int(seconds // 3600), int(seconds // 86400)
    if minutes < 1:
        return t["ago_now"]
    if hours < 1:
        return t["ago_minute"] if minutes == 1 else t["ago_minutes"].format(n=minutes)
    if days < 1:
        return t["ago_hour"] if hours == 1 else t["ago_hours"].format(n=hours)
    if days < 30:
        return t["ago_day"] if days == 1 else t["ago_days"].format(n=days)
    return t["ago_date"].format(date=datetime.fromtimestamp(_timestamp(iso), UTC).date().isoformat())


@router.get("/device", response_class=HTMLResponse)
async def device(request: Request, current: MaybeSignedIn) -> HTMLResponse:
    """Where a device link (`GET /auth/{passphrase}`) lands: save a passkey on this device and sign in.
    Without a link, the person can type the six words."""
    link = request.query_params.get("link")
    return _page(
        request,
        "device.html",
        page="device",
        me=current,
        config={"fromLink": link == "1"},
        from_link=link == "1",
        link_invalid=link == "invalid",
    )


@router.get("/auth/selftest", response_class=HTMLResponse)
async def selftest(request: Request, ctx: Ctx, current: MaybeSignedIn) -> HTMLResponse:
    """What the browser reports next to what the server expects, and which mismatch breaks sign-in."""
    settings = ctx.settings
    server = {
        "rp_id": settings.rp_id,
        "origins": list(settings.origins),
        "public_url": settings.public_url,
        "user_verification": settings.user_verification,
        "algorithms": list(settings.algorithms),
    }
    return _page(
        request, "selftest.html", page="selftest", me=current, config={"server": server}, server=server
    )


def wants_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML first), not an API client or a `fetch` for JSON."""
    accept = request.headers.get("accept", "")
    return request.method in ("GET", "HEAD") and "text/html" in accept.split(",", 1)[0]


def not_found(request: Request) -> HTMLResponse:
    """The site's own "page not found", for a mistyped address in a browser (API clients get JSON)."""
    locale = pick_locale(request.headers.get("accept-language"))
    response = render(
        request,
        "notfound.html",
        page="notfound",
        script=None,
        me=None,
        locale=locale,
        t=page_strings(locale),
        config={"page": "notfound"},
        path=request.url.path[:120],
    )
    response.status_code = 404
    response.headers.update(NO_STORE)
    return response
