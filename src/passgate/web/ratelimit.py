"""Per-address rate limits on the ceremony endpoints (`limits`; in memory, or Redis when configured)."""

from __future__ import annotations

from collections.abc import Callable

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection

from passgate.config import Settings
from passgate.errors import RateLimited


class RateLimit:
    def __init__(self, settings: Settings):
        storage = storage_from_string(settings.redis_url or "memory://")
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = parse(settings.rate_limit)

    def check(self, group: str, key: str) -> None:
        if not self._limiter.hit(self._item, group, key):
            raise RateLimited()


def limit(group: str) -> Callable[[HTTPConnection], None]:
    """A dependency that counts one attempt in `group` for the caller's address."""

    def dependency(connection: HTTPConnection) -> None:
        limiter: RateLimit = connection.app.state.rate_limit
        limiter.check(group, connection.client.host if connection.client else "-")

    return dependency
