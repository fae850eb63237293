"""Per-address rate limits on the endpoints that start ceremonies (`limits`; in memory, or Redis when
configured). Finishing needs a challenge that only a `begin` hands out, so limiting `begin` limits both.
The HTTP endpoints and their WebSocket twins (`/auth/ws/*`) count in the same groups, per caller key."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache

from limits import parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import HTTPConnection

from passgate.config import Settings
from passgate.errors import RateLimited
from passgate.web import proxies

log = logging.getLogger("passgate")
MEMORY = "async+memory://"
REDIS_OPTIONS: dict[str, str | float] = {
    "implementation": "redispy",  # the `redis` package (`passgate[redis]`), not `limits`' default coredis
    "key_prefix": "passgate",
    "socket_connect_timeout": 2.0,  # an unreachable Redis must not hold a sign-in for long
    "socket_timeout": 2.0,
}


def storage_uri(settings: Settings) -> str:
    """`limits`' asyncio storage URI: `async+redis://…` when PASSGATE_REDIS_URL is set, else memory."""
    return "async+" + settings.redis_url if settings.redis_url else MEMORY


IPV6_PREFIX = 64  # one subscriber's allocation (RFC 6177): a host picks any address in its /64 freely


class RateLimit:
    """`limits`' asyncio flavour: its memory storage expires keys with a task (the threaded one starts a
    timer thread per burst), and Redis is awaited instead of blocking the event loop.

    Redis is reached through the `redis` package (`implementation="redispy"`, what `passgate[redis]`
    installs). When Redis stops answering, counting goes on in this process's memory (logged once per
    outage) rather than turning every sign-in into a 500; it returns to Redis on the next success."""

    def __init__(self, settings: Settings):
        self._uri = storage_uri(settings)
        self._item = parse(settings.rate_limit)
        self._limiter: FixedWindowRateLimiter | None = None
        self._fallback: FixedWindowRateLimiter | None = None
        self._failing = False

    def _shared(self) -> FixedWindowRateLimiter:
        if self._limiter is None:  # the storage must be created inside the running event loop
            options = {} if self._uri == MEMORY else REDIS_OPTIONS
            self._limiter = FixedWindowRateLimiter(storage_from_string(self._uri, **options))
        return self._limiter

    async def _hit(self, group: str, key: str) -> bool:
        if self._uri == MEMORY:
            return await self._shared().hit(self._item, group, key)
        try:
            allowed = await self._shared().hit(self._item, group, key)
        except Exception as exc:  # the redis client's errors: connection refused, timeouts, auth
            if not self._failing:
                log.error("rate limits: Redis (PASSGATE_REDIS_URL) failed, counting in memory: %s", exc)
                self._failing = True
            if self._fallback is None:
                self._fallback = FixedWindowRateLimiter(storage_from_string(MEMORY))
            return await self._fallback.hit(self._item, group, key)
        if self._failing:
            log.warning("rate limits: Redis answers again")
            self._failing = False
        return allowed

    async def check(self, group: str, key: str) -> None:
        if not await self._hit(group, key):
            raise RateLimited()


@lru_cache(maxsize=4096)
def client_key(address: str) -> str:
    """The key one caller is counted under: an IPv4 address (also when IPv4-mapped), an IPv6 address's
    /64 network, or the text as it is when it is no address at all."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "-"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


async def count(connection: HTTPConnection, group: str) -> None:
    """Count one attempt in `group` for the caller (HTTP request or WebSocket); RateLimited past it."""
    limiter: RateLimit = connection.app.state.rate_limit
    await limiter.check(group, client_key(proxies.client_ip(connection)))


def limit(group: str) -> Callable[[HTTPConnection], Awaitable[None]]:
    """A dependency that counts one attempt in `group` for the caller."""

    async def dependency(connection: HTTPConnection) -> None:
        await count(connection, group)

    return dependency
