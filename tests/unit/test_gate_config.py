"""Forward-auth settings: the cookie domain against the Public Suffix List and Passgate's own hosts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gatekit import make_settings
from passgate.errors import ConfigError
from passgate.services.context import Context
from passgate.web import cookies

SITE = {"rp_id": "example.com", "origins": ["https://auth.example.com"]}


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("com", "public suffix"),
        ("co.uk", "public suffix"),
        ("github.io", "public suffix"),  # PSL private section: other people's sites
        ("other.com", "does not contain 'auth.example.com'"),
        ("app.example.com", "does not contain 'auth.example.com'"),
        ("https://example.com", "must be a domain name"),
        ("example.com:443", "must be a domain name"),
        ("192.0.2.1", "must be a domain name"),
    ],
)
def test_bad_cookie_domains_stop_start_up(tmp_path: Path, domain: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_settings(tmp_path, cookie_domain=domain, **SITE)
    assert "PASSGATE_COOKIE_DOMAIN" in error.value.message and message in error.value.message


@pytest.mark.parametrize("domain", ["example.com", ".example.com", "Example.COM"])
def test_good_cookie_domain(tmp_path: Path, domain: str) -> None:
    settings = make_settings(tmp_path, cookie_domain=domain, **SITE)
    assert settings.cookie_domain == "example.com"
    assert settings.session_cookie_name == "__Secure-passgate"


def test_localhost_cannot_share_a_cookie_domain(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="public suffix"):
        make_settings(tmp_path, cookie_domain="localhost")


def test_rules_and_return_hosts_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSGATE_FORWARD_AUTH_RULES", '{"admin": {"groups": ["admins"], "max_age": 60}}')
    monkeypatch.setenv("PASSGATE_RETURN_HOSTS", "partner.org, *.tools.net")
    monkeypatch.setenv("PASSGATE_REVOCATION_WINDOW", "2.5")
    settings = make_settings(tmp_path)
    assert settings.forward_auth_rules["admin"].groups == ("admins",)
    assert settings.forward_auth_rules["admin"].max_age == 60
    assert settings.return_hosts == ["partner.org", "*.tools.net"]
    assert settings.revocation_window == 2.5


@pytest.mark.parametrize(
    "overrides",
    [
        {"forward_auth_rules": {"bad name": {}}},
        {"forward_auth_rules": {"x": {"groups": ["Not Valid"]}}},
        {"return_hosts": ["https://x.org"]},
        {"revocation_window": -1},
        {"trusted_proxies": ["not-an-ip"]},
    ],
)
def test_bad_gate_settings_stop_start_up(tmp_path: Path, overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        make_settings(tmp_path, **overrides)


def test_cookie_domain_makes_a_secure_prefixed_domain_cookie(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, rp_id="example.com", origins=["https://auth.example.com"], cookie_domain="example.com"
    )
    assert settings.session_cookie_name == "__Secure-passgate"
    context = Context.build(settings)
    from starlette.responses import Response

    from passgate.services.sessions import SignedIn
    from passgate.store.records import SessionRecord, UserRecord

    user = UserRecord("u", "t", "ada", "Ada", b"h", False, 0.0, None, 0)
    session = SessionRecord("s", "t", "u", None, 0.0, 0.0, 0.0, True, "hwk", "", "", time.time() + 3600)
    response = Response()
    cookies.set_session(response, context, SignedIn(user=user, session=session, token="tok"))
    header = response.headers["set-cookie"]
    assert header.startswith("__Secure-passgate=tok;")
    for part in ("Domain=example.com", "Secure", "HttpOnly", "SameSite=lax", "Path=/"):
        assert part in header
    without = make_settings(tmp_path, rp_id="example.com", origins=["https://auth.example.com"])
    assert without.session_cookie_name == "__Host-passgate"
