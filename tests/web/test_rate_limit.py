"""Per-address rate limits on the endpoints that start ceremonies (ASVS 5.0 6.1.1, 2.4.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from appkit import app_client, make_settings
from flows import Passkeys
from passgate.errors import ConfigError
from passgate.services.context import Context


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
