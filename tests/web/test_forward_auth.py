"""`GET /auth/forward-auth` in process (ASGI): decisions, rules, revocation window, proxy headers.

The real proxies (nginx, Caddy) in front of a real `passgate serve` are in `tests/proxy/`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from flows import ORIGIN, Passkeys, unique_name
from gatekit import APP, app_client, gate, gate_ctx, signed_in
from passgate.services import groups
from passgate.services.context import Context
from passgate.store.models import sessions as session_rows
from passgate.web.app import create_app


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    yield from gate_ctx(tmp_path)


@pytest.fixture
async def http(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(ctx) as client:
        yield client


# --------------------------------------------------------------------------- the three answers


async def test_no_session_is_401_with_sign_in_that_returns_to_the_original_url(
    http: httpx.AsyncClient,
) -> None:
    response = await gate(http)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "PrivateToken"
    body = response.json()
    assert body["code"] == "not_authenticated"
    signin = urlsplit(body["signin_url"])
    assert f"{signin.scheme}://{signin.netloc}{signin.path}" == f"{ORIGIN}/signin"
    assert parse_qs(signin.query) == {"return_to": ["http://localhost:9000/app/page?x=1"]}
    assert response.headers["location"] == body["signin_url"]
    assert "x-auth-user-id" not in response.headers and "remote-user" not in response.headers


async def test_browsers_get_a_page_that_sends_them_to_sign_in(http: httpx.AsyncClient) -> None:
    response = await gate(http, headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    location = response.headers["location"]
    escaped = location.replace("&", "&amp;")
    assert f'http-equiv="refresh" content="0;url={escaped}"' in response.text
    assert f'href="{escaped}"' in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_signed_in_is_204_with_identity_headers(http: httpx.AsyncClient) -> None:
    _, name = await signed_in(http, unique_name("ada") + "@example.org")
    response = await gate(http)
    assert response.status_code == 204, response.text
    me = (await http.get("/auth/me")).json()
    assert response.headers["x-auth-user-id"] == me["user_id"]
    assert response.headers["remote-user"] == name
    assert response.headers["remote-name"] == name
    assert response.headers["remote-email"] == ""  # a name that looks like an address is not one
    assert response.headers["remote-groups"] == ""
    assert response.content == b""


async def test_no_email_header_when_the_name_is_not_an_address(http: httpx.AsyncClient) -> None:
    await signed_in(http)
    response = await gate(http)
    assert response.status_code == 204
    assert response.headers["remote-email"] == ""


@pytest.mark.parametrize(
    "uri", ["/healthz", "/favicon.ico", "/.well-known/acme-challenge/x", "/static/app.js"]
)
async def test_no_bypass_for_special_paths_or_agents(http: httpx.AsyncClient, uri: str) -> None:
    headers = {"x-forwarded-uri": uri, "user-agent": "kube-probe/1.29", "x-forwarded-method": "HEAD"}
    assert (await gate(http, headers=headers)).status_code == 401  # oauth2-proxy CVE-2026-34457


@pytest.mark.parametrize("method", ["HEAD", "POST", "OPTIONS", "PROPFIND"])
async def test_every_method_gets_the_same_decision(http: httpx.AsyncClient, method: str) -> None:
    assert (await http.request(method, "/auth/forward-auth", headers=APP)).status_code == 401  # ASVS 8.3.1
    await signed_in(http)
    assert (await http.request(method, "/auth/forward-auth", headers=APP)).status_code == 204


async def test_a_forged_or_garbled_cookie_is_401(http: httpx.AsyncClient, ctx: Context) -> None:
    await signed_in(http)
    token = http.cookies[ctx.settings.session_cookie_name]
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "x", token + "."):
        http.cookies.clear()
        http.cookies.set(ctx.settings.session_cookie_name, bad)
        assert (await gate(http)).status_code == 401


# --------------------------------------------------------------------------- rules


async def test_group_rule_403_outside_204_inside(http: httpx.AsyncClient, ctx: Context) -> None:
    _, name = await signed_in(http)
    outside = await gate(http, "?group=admins", {"accept": "text/html"})
    assert outside.status_code == 403
    assert "not allowed" in outside.text.lower() and name in outside.text
    assert (await gate(http, "?rule=admin")).status_code == 403
    groups.add(ctx, name, "admins")
    inside = await gate(http, "?group=admins")
    assert inside.status_code == 204
    assert inside.headers["remote-groups"] == "admins"
    assert (await gate(http, "?rule=admin")).status_code == 204
    groups.remove(ctx, name, "admins")
    assert (await gate(http, "?group=admins")).status_code == 403


async def test_user_rule(http: httpx.AsyncClient) -> None:
    _, name = await signed_in(http)
    assert (await gate(http, "?user=someone-else")).status_code == 403
    assert (await gate(http, f"?user=someone-else,{name}")).status_code == 204
    assert (await gate(http, f"?user=someone-else&group=staff&user={name}")).status_code == 204


@pytest.mark.parametrize(
    "query", ["?grup=admins", "?rule=nope", "?max_age=soon", "?uv=yes", "?group=", "?group=A%20B"]
)
async def test_a_query_the_gate_cannot_honour_fails_closed(http: httpx.AsyncClient, query: str) -> None:
    await signed_in(http)
    response = await gate(http, query)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_rule"


async def test_max_age_sends_an_old_check_to_recheck_and_back(http: httpx.AsyncClient, ctx: Context) -> None:
    passkeys, _ = await signed_in(http)
    assert (await gate(http, "?max_age=60")).status_code == 204
    assert (await gate(http, "?rule=fresh")).status_code == 204
    session_id = (await http.get("/auth/me")).json()["session_id"]
    ctx.db.transact(
        lambda c: c.execute(
            update(session_rows).where(session_rows.c.id == session_id).values(auth_time=time.time() - 120)
        )
    )
    stale = await gate(http, "?max_age=60")
    assert stale.status_code == 401
    assert stale.json()["code"] == "reauth_required"
    signin = parse_qs(urlsplit(stale.headers["location"]).query)
    assert signin == {"return_to": ["http://localhost:9000/app/page?x=1"], "reauth": ["1"]}
    assert (await gate(http, "?max_age=600")).status_code == 204
    assert (await passkeys.login()).status_code == 200  # the re-check refreshes this session
    assert (await http.get("/auth/me")).json()["session_id"] == session_id
    assert (await gate(http, "?max_age=60")).status_code == 204


async def test_the_gate_moves_last_seen_like_any_signed_in_request(
    http: httpx.AsyncClient, ctx: Context
) -> None:
    """An app used only behind the gate keeps its session from going idle: the gate records the visit
    (at most once a minute, `sessions.seen`), as `/auth/me` and every signed-in route do."""
    await signed_in(http)
    session_id = (await http.get("/auth/me")).json()["session_id"]
    where = session_rows.c.id == session_id
    ctx.db.transact(
        lambda c: c.execute(update(session_rows).where(where).values(last_seen_at=time.time() - 100))
    )
    assert (await gate(http)).status_code == 204
    seen = ctx.db.transact(lambda c: c.execute(select(session_rows.c.last_seen_at).where(where)).scalar_one())
    assert seen > time.time() - 5


async def test_uv_rule_needs_a_user_verified_session(http: httpx.AsyncClient) -> None:
    passkeys = Passkeys(http)
    assert (await passkeys.register(unique_name(), uv=False)).status_code == 200
    assert (await gate(http)).status_code == 204
    response = await gate(http, "?uv=1")
    assert response.status_code == 401 and response.json()["code"] == "reauth_required"


@pytest.mark.parametrize(
    "uri",
    ["/admin", "/admin/", "/ADMIN/x", "/public/../admin", "//admin", "/%2e%2e/admin", "/%2561dmin",
     "/admin;x=1", "/public\\..\\admin", "/%2Fadmin/settings", "/admin?/public", "/%ff/admin",
     "/admin/../public", "/admin/%2e%2e/public", "/admin/%252e%252e/public", "/admin/.%2e/x"],
)  # fmt: skip
async def test_located_rule_matches_the_normalised_path(http: httpx.AsyncClient, uri: str) -> None:
    await signed_in(http)  # not in "admins"
    headers = {"x-forwarded-host": "localhost:9000", "x-forwarded-uri": uri}
    assert (await gate(http, headers=headers)).status_code == 403  # oauth2-proxy CVE-2025-54576


@pytest.mark.parametrize("uri", ["/public?x=/admin", "/public/admin", "/administrator", "/"])
async def test_located_rule_leaves_other_paths_alone(http: httpx.AsyncClient, uri: str) -> None:
    await signed_in(http)
    headers = {"x-forwarded-host": "localhost:9000", "x-forwarded-uri": uri}
    assert (await gate(http, headers=headers)).status_code == 204


async def test_a_forged_host_meets_every_host_rule(http: httpx.AsyncClient) -> None:
    await signed_in(http)  # not in "admins"; the rule is for host `localhost`, path `/admin`
    for host in ("evil.example", "localhost.evil.example", "127.0.0.1:9000"):
        headers = {"x-forwarded-host": host, "x-forwarded-uri": "/admin/users"}
        assert (await gate(http, headers=headers)).status_code == 403, host
    assert (
        await gate(http, headers={"x-forwarded-host": "evil.example", "x-forwarded-uri": "/x"})
    ).status_code == 204


# --------------------------------------------------------------------------- the app's own query


async def test_the_apps_query_passed_on_by_a_plain_caddy_is_no_rule(http: httpx.AsyncClient) -> None:
    await signed_in(http)
    # Caddy `uri /auth/forward-auth` (no `?`) sends the app's query along: it equals X-Forwarded-Uri's
    for query in ("?x=1", "?grup=admins&page=2", "?rule=nope", "?user="):
        response = await gate(http, query, {"x-forwarded-uri": "/app/page" + query})
        assert response.status_code == 204, (query, response.text)
    assert (await gate(http, "?x=1", {"x-forwarded-uri": "/app/page?x=2"})).status_code == 400


async def test_a_client_cannot_cancel_the_proxys_options_by_copying_them(http: httpx.AsyncClient) -> None:
    await signed_in(http)
    for query in ("?group=admins", "?rule=admin", "?user=root"):
        response = await gate(http, query, {"x-forwarded-uri": "/app/page" + query})
        assert response.status_code == 403, query


# --------------------------------------------------------------------------- proxy headers


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(tmp_path: Path) -> None:
    for context in gate_ctx(tmp_path, trusted_proxies=[]):
        async with app_client(context) as http:
            response = await gate(
                http, headers={"x-forwarded-host": "evil.example", "x-forwarded-uri": "/public"}
            )
            assert response.status_code == 401
            assert response.headers["location"] == f"{ORIGIN}/signin"  # no return URL from an untrusted peer
            await signed_in(http)
            # the target is unknown, so every host/path rule applies (fails closed), whatever the peer claims
            assert (await gate(http, headers={"x-forwarded-uri": "/public"})).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"x-forwarded-for": "a"},
        {"x-forwarded-for": ""},
        {"x-forwarded-for": ",".join(["10.0.0.1"] * 1000)},
        {"x-forwarded-proto": "gopher"},
        {"x-forwarded-host": "good.example, evil.example"},
        {"x-forwarded-host": "evil.example/path"},
        {"x-forwarded-uri": "relative"},
        {"x-forwarded-uri": "/a b"},
        {"x-forwarded-method": "GE T"},
    ],
)
async def test_unparsable_forwarded_headers_fail_closed(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await signed_in(http)
    response = await gate(http, headers=headers)
    assert response.status_code == 400  # refused, not judged on a guess
    assert response.json()["code"] == "bad_forwarded"


@pytest.mark.parametrize(
    "name", ["x-forwarded-host", "x-forwarded-uri", "x-forwarded-proto", "x-forwarded-method"]
)
async def test_a_repeated_forwarded_header_fails_closed(http: httpx.AsyncClient, name: str) -> None:
    await signed_in(http)
    value = APP.get(name, "GET")
    headers = [*((key, item) for key, item in APP.items() if key != name), (name, value), (name, value)]
    response = await http.get("/auth/forward-auth", headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_forwarded"


async def test_another_cookie_ending_in_the_name_is_not_the_session(
    http: httpx.AsyncClient, ctx: Context
) -> None:
    await signed_in(http)
    token = http.cookies[ctx.settings.session_cookie_name]
    http.cookies.clear()
    response = await gate(http, headers={"cookie": f"my{ctx.settings.session_cookie_name}={token}"})
    assert response.status_code == 401
    response = await gate(http, headers={"cookie": f"theme=dark;{ctx.settings.session_cookie_name}={token}"})
    assert response.status_code == 204


async def test_the_gate_and_the_api_read_one_cookie_the_same_way(
    http: httpx.AsyncClient, ctx: Context
) -> None:
    name = ctx.settings.session_cookie_name
    await signed_in(http)
    token_a, user_a = http.cookies[name], (await http.get("/auth/me")).json()["user_id"]
    http.cookies.clear()
    await signed_in(http)
    token_b, user_b = http.cookies[name], (await http.get("/auth/me")).json()["user_id"]
    http.cookies.clear()
    # `prefs=a passgate=A` is one cookie named `prefs`: both surfaces see B (the gate used to see A)
    cookie = {"cookie": f"prefs=a {name}={token_a}; {name}={token_b}"}
    assert (await http.get("/auth/me", headers=cookie)).json()["user_id"] == user_b
    assert (await gate(http, headers=cookie)).headers["x-auth-user-id"] == user_b
    assert user_a != user_b


@pytest.mark.parametrize("shape", ["one header", "two headers", "one empty"])
async def test_a_duplicate_session_cookie_is_refused_everywhere(
    http: httpx.AsyncClient, ctx: Context, shape: str
) -> None:
    name = ctx.settings.session_cookie_name
    await signed_in(http)
    token = http.cookies[name]
    http.cookies.clear()
    headers = {
        "one header": [("cookie", f"{name}={token}; theme=dark; {name}={token}")],
        "two headers": [("cookie", f"{name}={token}"), ("cookie", f"{name}={token}")],
        "one empty": [("cookie", f"{name}=; {name}={token}")],
    }[shape]
    me = await http.get("/auth/me", headers=headers)
    assert me.status_code == 401
    assert me.json()["code"] == "duplicate_cookie"
    denied = await http.get("/auth/forward-auth", headers=[*APP.items(), *headers])
    assert denied.status_code == 401
    assert denied.json()["code"] == "duplicate_cookie"
    assert denied.headers["location"].startswith(f"{ORIGIN}/signin")
    # a cookie in a second Cookie header counts on both surfaces (HTTP/2 splits cookies that way)
    split = [("cookie", "theme=dark"), ("cookie", f"{name}={token}")]
    assert (await http.get("/auth/me", headers=split)).status_code == 200
    assert (await http.get("/auth/forward-auth", headers=[*APP.items(), *split])).status_code == 204


async def test_return_url_on_a_foreign_host_is_dropped(http: httpx.AsyncClient) -> None:
    response = await gate(http, headers={"x-forwarded-host": "evil.example"})
    assert response.status_code == 401
    assert response.headers["location"] == f"{ORIGIN}/signin"


async def test_client_ip_comes_from_a_trusted_proxy(http: httpx.AsyncClient) -> None:
    await Passkeys(http).register(unique_name())
    sessions = (await http.post("/auth/user-info", json={})).json()["sessions"]
    assert sessions[0]["ip"] == "127.0.0.1"
    passkeys = Passkeys(http)
    http.cookies.clear()
    http.headers["x-forwarded-for"] = "203.0.113.9, 127.0.0.1"
    await passkeys.register(unique_name())
    sessions = (await http.post("/auth/user-info", json={})).json()["sessions"]
    assert sessions[0]["ip"] == "203.0.113.9"


# --------------------------------------------------------------------------- the authentication app


@pytest.mark.parametrize("path", ["/auth", "/auth/"])
async def test_auth_is_the_authentication_app(http: httpx.AsyncClient, path: str) -> None:
    app_url = "http://localhost:9000/app/page?x=1"
    for parameter in ("rd", "next", "return_to"):
        response = await http.get(path, params={parameter: app_url})
        assert response.status_code == 303
        assert parse_qs(urlsplit(response.headers["location"]).query) == {"return_to": [app_url]}
        assert response.headers["location"].startswith("/signin?")
    for trick in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)"):
        assert (await http.get(path, params={"next": trick})).headers["location"] == "/signin"
    assert (await http.get(path)).headers["location"] == "/signin"
    assert (
        await http.get("/signin", params={"next": app_url}, headers={"accept": "text/html"})
    ).status_code == 200
    await signed_in(http)
    signed = await http.get(path, params={"rd": app_url})
    assert signed.status_code == 303 and signed.headers["location"] == "/account"


# --------------------------------------------------------------------------- cookie, account, docs, CLI


async def test_account_shows_groups(http: httpx.AsyncClient, ctx: Context) -> None:
    _, name = await signed_in(http)
    groups.add(ctx, name, "Staff")
    groups.add(ctx, name, "admins")
    info = (await http.post("/auth/user-info", json={})).json()
    assert info["user"]["groups"] == ["admins", "staff"]


async def test_openapi_documents_the_gate(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert set(paths["/auth/forward-auth"]["get"]["responses"]) >= {"204", "401", "403"}


async def test_the_fastapi_route_answers_the_same_without_the_fast_lane(ctx: Context) -> None:
    app = create_app(ctx.settings, ctx)
    app.fast_lane = None  # type: ignore[attr-defined]  # through FastAPI's stack and the documented route
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers={"origin": ORIGIN}) as http:
        assert (await gate(http)).status_code == 401
        await signed_in(http)
        allowed = await gate(http)
        assert allowed.status_code == 204
        assert allowed.headers["remote-user"]
        assert (await gate(http, "?group=admins")).status_code == 403
        assert (await gate(http, "?grup=admins")).status_code == 400


async def test_the_gate_on_each_database(tmp_path: Path, database_url: str) -> None:
    for context in gate_ctx(tmp_path, database_url=database_url):
        async with app_client(context) as http:
            _, name = await signed_in(http)
            groups.add(context, name, "admins")
            assert (await gate(http, "?group=admins")).status_code == 204
            cookie = http.cookies[context.settings.session_cookie_name]
            assert (await http.post("/auth/logout", json={})).status_code == 200
            http.cookies.clear()
            http.cookies.set(context.settings.session_cookie_name, cookie)
            assert (await gate(http)).status_code == 401  # window 0: the database says the session ended
