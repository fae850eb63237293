"""Rate limits shared through the machine's Redis (127.0.0.1:6379, or PASSGATE_TEST_REDIS): two real
`passgate serve` processes count against one limit; an unreachable Redis degrades to per-process
counting instead of failing every sign-in; `passgate doctor` connects and reports.

Each test counts for its own random client address (sent through a trusted proxy's X-Forwarded-For),
so runs sharing the Redis server never see each other's counters."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from appkit import app_client, make_settings
from passgate.cli import app
from passgate.services.context import Context
from servers import start_passgate

IN_CI = os.environ.get("CI", "").lower() == "true"
REDIS_URL = os.environ.get("PASSGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")
UNREACHABLE = "redis://127.0.0.1:1/0"
pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required under CI=true but {REDIS_URL} is unreachable: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL} (set PASSGATE_TEST_REDIS)")
    finally:
        client.close()
    return REDIS_URL


def random_address() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def begin(http: httpx.Client, url: str, address: str) -> int:
    return http.post(
        f"{url}/auth/login/begin", json={}, headers={"origin": url, "x-forwarded-for": address}
    ).status_code


def test_two_processes_share_one_limit_through_redis(tmp_path: Path, redis_url: str) -> None:
    env = {
        "PASSGATE_REDIS_URL": redis_url,
        "PASSGATE_RATE_LIMIT": "4/minute",
        "PASSGATE_TRUSTED_PROXIES": "127.0.0.1",
    }
    address = random_address()
    with (
        start_passgate(tmp_path, env=env, name="first") as first,
        start_passgate(tmp_path, env=env, name="second") as second,
        httpx.Client() as http,
    ):
        answers = [begin(http, server.url, address) for server in (first, second, first, second)]
        assert answers == [200, 200, 200, 200]
        assert begin(http, first.url, address) == 429  # the fifth, on either process
        assert begin(http, second.url, address) == 429
        assert begin(http, second.url, random_address()) == 200  # another address has its own budget
        assert "coredis" not in first.output() + second.output()


async def test_an_unreachable_redis_counts_in_memory_instead_of_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = Context.build(make_settings(tmp_path, redis_url=UNREACHABLE, rate_limit="2/minute"))
    ctx.db.migrate()
    async with app_client(ctx) as http:
        answers = [(await http.post("/auth/login/begin", json={})).status_code for _ in range(3)]
    ctx.db.dispose()
    assert answers == [200, 200, 429]
    assert "PASSGATE_REDIS_URL" in caplog.text


def test_doctor_connects_to_redis_and_reports(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"PASSGATE_DATA_DIR": str(tmp_path / "data"), "PASSGATE_REDIS_URL": redis_url}
    good = CliRunner().invoke(app, ["doctor"], env=env)
    assert good.exit_code == 0, good.output
    assert "✔ rate limits" in good.output and "shared through Redis" in good.output
    bad = CliRunner().invoke(app, ["doctor"], env={**env, "PASSGATE_REDIS_URL": UNREACHABLE})
    assert bad.exit_code == 1
    assert "✘ rate limits" in bad.output and "PASSGATE_REDIS_URL" in bad.output
    assert "Traceback" not in bad.output
