"""Per-address rate limits on the endpoints that start ceremonies (`limits`; in memory, or Redis when
configured). Finishing needs a challenge that only a `begin` hands out, so limiting `begin` limits both."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from limits import parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import HTTPConnection

from passgate.config import Settings
from passgate.errors import RateLimited
from passgate.web import proxies


class RateLimit:
    """`limits`' asyncio flavour: its memory storage expires keys with a task (the threaded one starts a
    timer thread per burst), and Redis is awaited instead of blocking the event loop."""

    def __init__(self, settings: Settings):
        self._uri = "async+" + (settings.redis_url or "memory://")
        self._item = parse(settings.rate_limit)
        self._limiter: FixedWindowRateLimiter | None = None

    async def check(self, group: str, key: str) -> None:
        if self._limiter is None:  # the storage must be created inside the running event loop
            self._limiter = FixedWindowRateLimiter(storage_from_string(self._uri))
        if not await self._limiter.hit(self._item, group, key):
            raise RateLimited()


def limit(group: str) -> Callable[[HTTPConnection], Awaitable[None]]:
    """A dependency that counts one attempt in `group` for the caller's address."""

    async def dependency(connection: HTTPConnection) -> None:
        limiter: RateLimit = connection.app.state.rate_limit
        await limiter.check(group, proxies.client_ip(connection) or "-")

    return dependency
