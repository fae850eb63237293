"""The gate behind real nginx and Caddy, with the documented configs (`docs/proxies/`), a real
`passgate serve` and an app that echoes the headers it receives and routes by prefix. Each test runs
once per proxy; the plain Caddy config (`uri` without `?`) has a test of its own."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gatekit import PATH_CLEAR, PATH_TRICKS, TRICKS

if TYPE_CHECKING:
    from proxying import Gated, Person
    from servers import RunningServer

pytest_plugins = ["proxying"]  # the fixtures (a module, not a conftest: see its docstring)

HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def sign_in_target(gated: Gated, response: httpx.Response) -> str:
    """Where the proxy sends a person who must sign in: nginx redirects, Caddy forwards Passgate's page."""
    if gated.proxy == "nginx":
        assert response.status_code == 302, response.text[:300]
        return response.headers["location"]
    assert response.status_code == 401, response.text[:300]
    assert response.headers["www-authenticate"] == "PrivateToken"
    location = response.headers["location"]
    refresh = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', response.text)
    assert refresh is not None and refresh.group(1).replace("&amp;", "&") == location
    return location


def reached_admin(response: httpx.Response) -> bool:
    return response.status_code == 200 and bool(response.content) and response.json()["handler"] == "admin"


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def signed_up(gated: Gated) -> Person:
    person = gated.person()
    person.sign_up()
    return person


def test_sign_in_journey_keeps_the_original_url(gated: Gated) -> None:
    person = gated.person()
    wanted = gated.app_url + "/app/page?x=1&y=%2F"
    target = sign_in_target(gated, person.get(wanted, headers=HTML))
    assert target.startswith(gated.passgate.url + "/signin?")
    assert query_of(target)["return_to"] == [wanted]
    assert person.get(target).status_code == 200  # Passgate's sign-in page
    person.sign_up()
    arrived = person.get(wanted, headers=HTML)
    received = person.upstream_headers(arrived)
    assert arrived.json()["path"] == "/app/page?x=1&y=%2F"
    me = person.api("/auth/user-info").json()["user"]
    assert received["remote-user"] == [person.user_name]
    assert received["x-auth-user-id"] == [me["user_id"]]
    assert received["remote-name"] == [person.user_name]


def test_api_clients_are_refused_without_a_session(gated: Gated) -> None:
    response = gated.person().get(gated.app_url + "/api/items", headers={"accept": "application/json"})
    assert response.status_code in (302, 401)
    if response.status_code == 401:
        assert response.json()["code"] == "not_authenticated"


def test_client_sent_identity_never_reaches_the_app(gated: Gated) -> None:
    forged = {
        "Remote-User": "admin",
        "remote-user": "root",
        "X-Auth-User-Id": "00000000-0000-0000-0000-000000000001",
        "Remote-Groups": "admins",
        "Remote-Email": "ceo@example.com",
        "Remote-Name": "The CEO",
    }
    anonymous = gated.person()
    assert anonymous.get(gated.app_url + "/", headers={**HTML, **forged}).status_code in (302, 401)
    person = signed_up(gated)
    received = person.upstream_headers(person.get(gated.app_url + "/", headers=forged))
    me = person.api("/auth/user-info").json()["user"]
    assert received["remote-user"] == [person.user_name]
    assert received["x-auth-user-id"] == [me["user_id"]]
    assert received["remote-name"] == [person.user_name]
    assert received.get("remote-groups", [""]) == [""]
    assert received.get("remote-email", [""]) == [""]  # the name is no address: nothing, never the forgery


def test_the_session_cookie_does_not_reach_the_app(gated: Gated) -> None:
    person = signed_up(gated)
    person.http.cookies.set("theme", "dark")
    received = person.upstream_headers(person.get(gated.app_url + "/"))
    cookie = "; ".join(received.get("cookie", []))
    assert "theme=dark" in cookie
    assert "passgate=" not in cookie  # ASVS 10.1.1: tokens only to the parts that need them


def test_group_rule_403_outside_200_inside(gated: Gated) -> None:
    person = signed_up(gated)
    assert person.get(gated.app_url + "/admin/users").status_code == 403
    assert person.get(gated.app_url + "/public/../admin/users").status_code == 403  # normalised by the proxy
    assert person.get(gated.app_url + "/%61dmin/users").status_code == 403
    assert person.get(gated.app_url + "/public").status_code == 200
    gated.admin("user", "group", "add", person.user_name, "admins")
    time.sleep(gated.window + 0.1)
    received = person.upstream_headers(person.get(gated.app_url + "/admin/users"))
    assert received["remote-groups"] == ["admins"]


def test_max_age_sends_an_old_check_to_recheck_and_back(gated: Gated) -> None:
    person = signed_up(gated)
    fresh = gated.app_url + "/fresh/report"
    assert person.get(fresh).status_code == 200
    time.sleep(2.2)  # the "fresh" rule: max_age 2 s
    target = sign_in_target(gated, person.get(fresh, headers=HTML))
    assert query_of(target) == {"return_to": [fresh], "reauth": ["1"]}
    assert person.get(gated.app_url + "/elsewhere").status_code == 200  # other paths do not ask
    person.sign_in()  # the re-check with the passkey refreshes the session
    assert person.get(fresh).status_code == 200


@pytest.mark.parametrize("how", ["logout", "logout-all", "revoked from another device", "user disabled"])
def test_revocation_blocks_within_the_window(gated: Gated, how: str) -> None:
    person = signed_up(gated)
    page = gated.app_url + "/"
    assert person.get(page).status_code == 200
    name = "passgate"  # plain http on localhost here; `__Host-passgate` on https
    cookie = person.http.cookies[name]
    if how == "logout":
        assert person.api("/auth/logout").status_code == 200
    elif how == "logout-all":
        assert person.api("/auth/logout-all").status_code == 200
    elif how == "revoked from another device":
        session_id = person.http.get(gated.passgate.url + "/auth/me").json()["session_id"]
        laptop = gated.person(authenticator=person.authenticator)
        laptop.sign_in()
        assert laptop.api("/auth/delete-session", {"session_id": session_id}).status_code == 200
    else:
        gated.admin("user", "disable", person.user_name)
    person.http.cookies.clear()
    person.http.cookies.set(name, cookie)  # a copy of the old cookie is replayed
    deadline = time.monotonic() + gated.window + 0.5
    while person.get(page).status_code == 200:
        assert time.monotonic() < deadline, "still allowed after the revocation window"
        time.sleep(0.1)
    sign_in_target(gated, person.get(page, headers=HTML))


PROXY_TRICKS = [
    {"host": "evil.com"},
    {"host": "evil.com:443"},
    {"host": "localhost.evil.com"},
    {"x-forwarded-host": "evil.com"},
    {"x-forwarded-uri": "//evil.com/"},
    {"path": "//evil.com/"},
    {"path": "///evil.com/"},
    {"path": "/\\evil.com/"},
    {"path": "/%2F%2Fevil.com/"},
    {"path": "/%5Cevil.com"},
    {"path": "/%09/evil.com"},
    {"path": "/..//evil.com"},
    {"path": "/@evil.com"},
    {"path": "/?next=//evil.com"},
    {"path": "/%0d%0aLocation:%20https://evil.com"},
    {"path": "/javascript:alert(1)"},
]


@pytest.mark.parametrize(
    "trick", PROXY_TRICKS, ids=lambda trick: "-".join(f"{k}={v}" for k, v in trick.items())
)
def test_open_redirect_tricks_through_the_proxy_are_refused(gated: Gated, trick: dict[str, str]) -> None:
    headers = {name: value for name, value in trick.items() if name != "path"}
    response = gated.person().get_raw(gated.app_url, trick.get("path", "/"), {**HTML, **headers})
    # a redirect or page to sign in, a refusal, or (Caddy, unknown host) an empty answer
    assert response.status_code in (302, 400, 401, 404, 421) or response.content == b"", response.status_code
    for url in [response.headers.get("location", ""), *re.findall(r'(?:href|url)=([^">]+)', response.text)]:
        url = url.replace("&amp;", "&")
        if not url:
            continue
        assert (urlsplit(url).hostname or "localhost") == "localhost", url
        for back in query_of(url).get("return_to", []):
            assert urlsplit(back).hostname == "localhost", back
            assert not urlsplit(back).path.startswith(("//", "/\\")), back


@pytest.mark.parametrize("trick", TRICKS[:30])
def test_sign_in_page_refuses_return_tricks(passgate: RunningServer, trick: str) -> None:
    response = httpx.get(passgate.url + "/signin", params={"return_to": trick, "rd": trick})
    assert response.status_code == 200
    links = re.findall(r'(?:href|src|action|content)="([^"]*)"', response.text)
    assert not [link for link in links if "evil" in link.lower() or "javascript:" in link.lower()]
    assert 'id="continue"' not in response.text


def test_forwarded_headers_from_an_untrusted_address_are_ignored(passgate: RunningServer) -> None:
    spoof = {"x-forwarded-proto": "https", "x-forwarded-host": "evil.com", "x-forwarded-uri": "/steal"}
    gate = passgate.url + "/auth/forward-auth"
    untrusted = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with untrusted:
        response = untrusted.get(gate, headers=spoof)
    assert response.status_code == 401
    assert response.headers["location"] == passgate.url + "/signin"  # no return URL from that peer
    trusted = httpx.get(gate, headers={**spoof, "x-forwarded-host": "localhost:4321"})
    assert query_of(trusted.headers["location"])["return_to"] == ["https://localhost:4321/steal"]
    refused = httpx.get(gate, headers=spoof)  # trusted peer, but evil.com is no allowed return host
    assert refused.headers["location"] == passgate.url + "/signin"


def test_path_tricks_never_reach_the_apps_admin_handler(gated: Gated) -> None:
    """The `/admin` rule holds whatever the target looks like: the proxies pass it on raw, so the gate
    must judge every way the app could read it (`gatekit.PATH_TRICKS`)."""
    person = signed_up(gated)  # not in "admins"
    answers = {trick: person.get_raw(gated.app_url, trick) for trick in PATH_TRICKS}
    assert {trick: r.status_code for trick, r in answers.items() if r.status_code == 200} == {}
    assert not [trick for trick, response in answers.items() if reached_admin(response)]
    judged = [trick for trick, response in answers.items() if response.status_code == 403]
    assert len(judged) > len(PATH_TRICKS) * 0.7, answers  # most reach the gate (the rest: proxy 400s)
    for clear in PATH_CLEAR:
        response = person.get_raw(gated.app_url, clear)
        assert response.status_code == 200 and response.json()["handler"] == "other", clear


@pytest.mark.parametrize("host", ["evil.com", "localhost.evil.com", "127.0.0.1"])
def test_a_forged_host_never_skips_a_host_rule(gated: Gated, host: str) -> None:
    person = signed_up(gated)  # the rule: host `localhost`, path `/admin`, group `admins`
    response = person.get(gated.app_url + "/admin/users", headers={"host": host})
    assert not reached_admin(response), response.status_code
    if gated.proxy == "nginx":
        assert response.status_code == 421  # the recipe's default server
    assert person.get(gated.app_url + "/admin/users").status_code == 403


def test_a_plain_caddy_config_keeps_query_strings_working(plain_caddy: Gated) -> None:
    """`uri /auth/forward-auth` without `?`, as Caddy's docs show: Caddy passes `?x=1` on to Passgate."""
    person = plain_caddy.person()
    wanted = plain_caddy.app_url + "/page?x=1"
    anonymous = person.get(wanted, headers=HTML)
    assert anonymous.status_code == 401  # not a 400
    assert query_of(anonymous.headers["location"])["return_to"] == [wanted]
    person.sign_up()
    arrived = person.get(wanted)
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["path"] == "/page?x=1"
    assert person.get(plain_caddy.app_url + "/page?rule=nope&grup=1").status_code == 200
    assert person.get_raw(plain_caddy.app_url, "/admin/..%2fpage?x=1").status_code == 403


@pytest.mark.parametrize("path", ["/auth", "/auth/"])
def test_the_authentication_app_at_auth(passgate: RunningServer, path: str) -> None:
    """What other gates' nginx configs point at (`error_page 401 = …/auth/?rd=…`)."""
    back = "http://localhost:4321/app?x=1"
    for parameter in ("rd", "next", "return_to"):
        response = httpx.get(passgate.url + path, params={parameter: back}, follow_redirects=True)
        assert response.status_code == 200
        assert str(response.url).startswith(passgate.url + "/signin?")
        assert query_of(str(response.url))["return_to"] == [back]
    refused = httpx.get(passgate.url + path, params={"next": "https://evil.com/"}, follow_redirects=True)
    assert str(refused.url) == passgate.url + "/signin"
