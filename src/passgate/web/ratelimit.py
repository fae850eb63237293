"""Per-address rate limits on the endpoints that start ceremonies (`limits`; in memory, or Redis when
configured). Finishing needs a challenge that only a `begin` hands out, so limiting `begin` limits both."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from starlette.requests import HTTPConnection

from passgate.config import Settings
from passgate.errors import RateLimited
from passgate.web import proxies


class RateLimit:
    def __init__(self, settings: Settings):
        storage = storage_from_string(settings.redis_url or "memory://")
        self._limiter = FixedWindowRateLimiter(storage)
        self._item = parse(settings.rate_limit)

    def check(self, group: str, key: str) -> None:
        if not self._limiter.hit(self._item, group, key):
            raise RateLimited()


def limit(group: str) -> Callable[[HTTPConnection], Awaitable[None]]:
    """A dependency that counts one attempt in `group` for the caller's address."""

    async def dependency(connection: HTTPConnection) -> None:
        limiter: RateLimit = connection.app.state.rate_limit
        limiter.check(group, proxies.client_ip(connection) or "-")

    return dependency
