"""Per-address rate limits on the endpoints that start ceremonies (ASVS 5.0 6.1.1, 2.4.1); IPv6 callers
are counted per /64. The WebSocket twins: tests/web/test_websockets.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from appkit import app_client, make_settings
from flows import ORIGIN, Passkeys
from passgate.errors import ConfigError
from passgate.services.context import Context
from passgate.web.app import create_app
from passgate.web.ratelimit import client_key


async def test_begin_endpoints_answer_429_past_the_limit_and_groups_are_separate(tmp_path: Path) -> None:
    ctx = Context.build(make_settings(tmp_path, rate_limit="3/minute"))
    ctx.db.migrate()
    async with app_client(ctx) as http:
        for _ in range(3):
            assert (await http.post("/auth/login/begin", json={})).status_code == 200
        refused = await http.post("/auth/login/begin", json={})
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "Too many attempts. Wait a minute and try again.",
            "code": "rate_limited",
        }
        assert (await http.post("/auth/register/begin", json={"user_name": "x"})).status_code == 429
        # device links count in their own group
        assert (await http.post("/auth/validate-device-token", json={"token": "a.b.c"})).status_code == 400
    ctx.db.dispose()


async def test_finishing_is_not_limited_by_the_begin_budget(tmp_path: Path) -> None:
    ctx = Context.build(make_settings(tmp_path, rate_limit="2/minute"))
    ctx.db.migrate()
    async with app_client(ctx) as http:
        browser = Passkeys(http)
        assert (await browser.register()).status_code == 200  # begin 1 of 2
        assert (await browser.login()).status_code == 200  # begin 2 of 2; the finish is not counted
        assert (await http.post("/auth/login/begin", json={})).status_code == 429
    ctx.db.dispose()


@pytest.mark.parametrize("value", ["lots", "3/fortnight", ""])
def test_an_invalid_rate_stops_start_up_naming_the_setting(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="PASSGATE_RATE_LIMIT"):
        make_settings(tmp_path, rate_limit=value)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
        ("", "-"),
        ("testclient", "testclient"),
    ],
)
def test_one_key_per_caller_ipv4_address_or_ipv6_64(address: str, key: str) -> None:
    assert client_key(address) == key


async def test_ipv6_callers_share_their_64_on_the_http_endpoints(tmp_path: Path) -> None:
    """A host holds a whole /64 (RFC 6177): rotating the interface identifier must not reset the count."""
    ctx = Context.build(make_settings(tmp_path, rate_limit="2/minute"))
    ctx.db.migrate()
    app = create_app(ctx.settings, ctx)

    def caller(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 4000))
        return httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers={"origin": ORIGIN})

    async with caller("2001:db8:a:b::1") as first, caller("2001:db8:a:b::2") as second:
        assert (await first.post("/auth/login/begin", json={})).status_code == 200
        assert (await second.post("/auth/login/begin", json={})).status_code == 200
        assert (await first.post("/auth/login/begin", json={})).status_code == 429
        assert (await second.post("/auth/register/begin", json={"user_name": "x"})).status_code == 429
    async with caller("2001:db8:a:c::1") as elsewhere:
        assert (await elsewhere.post("/auth/login/begin", json={})).status_code == 200
    ctx.db.dispose()
