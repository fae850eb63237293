"""The one return-URL check (ASVS 3.7.2): allowed hosts only, and every known trick refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekit import TRICKS, make_settings
from passgate.config import Settings
from passgate.services.return_url import safe_return_url


@pytest.fixture
def https(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        rp_id="example.com",
        origins=["https://auth.example.com"],
        cookie_domain="example.com",
        return_hosts=["partner.org", "*.tools.net"],
    )


@pytest.fixture
def local(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)  # http://localhost:8000, no cookie domain


@pytest.mark.parametrize("url", TRICKS)
def test_tricks_are_refused(https: Settings, url: str) -> None:
    assert safe_return_url(https, url) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/account", "/account"),
        ("/a/b?next=%2Fx#frag", "/a/b?next=%2Fx#frag"),
        ("https://auth.example.com/account", "https://auth.example.com/account"),
        ("https://app.example.com/path?q=1", "https://app.example.com/path?q=1"),
        ("HTTPS://App.Example.COM/Path", "https://app.example.com/Path"),
        ("https://example.com", "https://example.com/"),
        ("https://deep.app.example.com:8443/x", "https://deep.app.example.com:8443/x"),
        ("https://partner.org/welcome", "https://partner.org/welcome"),
        ("https://a.tools.net/", "https://a.tools.net/"),
        ("https://app.example.com?q=%2F", "https://app.example.com?q=%2F"),
    ],
)
def test_allowed_urls_pass_normalised(https: Settings, url: str, expected: str) -> None:
    assert safe_return_url(https, url) == expected


def test_without_cookie_domain_only_own_hosts(local: Settings) -> None:
    assert safe_return_url(local, "http://localhost:9000/app") == "http://localhost:9000/app"
    assert safe_return_url(local, "http://localhost:8000/") == "http://localhost:8000/"
    assert safe_return_url(local, "http://app.localhost:8000/") is None
    assert safe_return_url(local, "http://example.com/") is None
    assert safe_return_url(local, None) is None


def test_at_least_fifteen_tricks() -> None:
    assert len(TRICKS) >= 15
