"""Trusted proxies: `X-Forwarded-*` is honoured only when the direct peer is in `PASSGATE_TRUSTED_PROXIES`
(SECURITY FA-01); from anyone else it is ignored. From a trusted peer, a value that cannot be parsed
fails closed (FA-02): the request is refused instead of being judged on a guess.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.types import Scope

from passgate.errors import BadRequest

MAX_HOPS = 32
MAX_URI = 8192
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_URI = re.compile(r"^/[\x21-\x7e]*$")
_METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$")
_WANTED = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-uri", b"x-forwarded-method"}
)


class BadForwarded(BadRequest):
    code = "bad_forwarded"
    message = "The proxy sent X-Forwarded-* headers that cannot be parsed."


@dataclass(frozen=True, slots=True)
class Forwarded:
    """What a trusted proxy says about the original request (all None from an untrusted peer)."""

    trusted: bool
    client_ip: str
    proto: str | None = None
    host: str | None = None  # lowercase `host[:port]`
    uri: str | None = None  # the raw request target: path and query
    method: str | None = None

    @property
    def url(self) -> str | None:
        """The original URL, when the proxy told all of scheme, host and target."""
        if self.proto and self.host and self.uri:
            return f"{self.proto}://{self.host}{self.uri}"
        return None


class TrustedProxies:
    """The configured proxy networks, with a small memo of addresses already judged."""

    def __init__(self, cidrs: Iterable[str]):
        self.networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
        self._memo: dict[str, bool] = {}

    def trusts(self, address: str) -> bool:
        known = self._memo.get(address)
        if known is None:
            known = self._judge(address)
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[address] = known
        return known

    def _judge(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def client_ip(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The first address from the right that is not a trusted proxy (the leftmost if all are)."""
        for address in reversed(forwarded_for):
            if not self.trusts(address):
                return address
        return forwarded_for[0] if forwarded_for else peer


def read_forwarded(proxies: TrustedProxies, scope: Scope) -> Forwarded:
    """The proxy's view of the original request; BadForwarded when a trusted proxy's headers are malformed."""
    client = scope.get("client")
    peer = client[0] if client else ""
    if not proxies.networks or not proxies.trusts(peer):
        return Forwarded(trusted=False, client_ip=peer)
    values: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _WANTED:
            if name in values and name != b"x-forwarded-for":
                raise BadForwarded(detail=f"{name.decode()} sent twice")
            values[name] = values[name] + b"," + value if name in values else value
    hops = _forwarded_for(values.get(b"x-forwarded-for"))
    return Forwarded(
        trusted=True,
        client_ip=proxies.client_ip(peer, hops),
        proto=_checked(values.get(b"x-forwarded-proto"), _proto),
        host=_checked(values.get(b"x-forwarded-host"), _host),
        uri=_checked(values.get(b"x-forwarded-uri"), _uri),
        method=_checked(values.get(b"x-forwarded-method"), _method),
    )


def _checked(raw: bytes | None, check: Callable[[str], str]) -> str | None:
    if raw is None:
        return None
    try:
        return check(raw.decode("ascii"))
    except UnicodeDecodeError:
        raise BadForwarded(detail="non-ASCII X-Forwarded-* value") from None


def _proto(text: str) -> str:
    value = text.strip().lower()
    if value not in ("http", "https"):
        raise BadForwarded(detail=f"X-Forwarded-Proto {text[:40]!r}")
    return value


def _host(text: str) -> str:
    value = text.strip().lower()
    if not _HOST.match(value):
        raise BadForwarded(detail=f"X-Forwarded-Host {text[:80]!r}")
    return value


def _uri(text: str) -> str:
    if len(text) > MAX_URI or not _URI.match(text):
        raise BadForwarded(detail=f"X-Forwarded-Uri {text[:80]!r}")
    return text


def _method(text: str) -> str:
    if not _METHOD.match(text):
        raise BadForwarded(detail=f"X-Forwarded-Method {text[:40]!r}")
    return text.upper()


def _forwarded_for(raw: bytes | None) -> list[str]:
    """Each hop of X-Forwarded-For; any empty, unparsable or excessive list fails closed."""
    if raw is None:
        return []
    parts = raw.split(b",")
    if len(parts) > MAX_HOPS:
        raise BadForwarded(detail=f"X-Forwarded-For has {len(parts)} entries")
    hops = []
    for part in parts:
        try:
            hops.append(str(ipaddress.ip_address(part.strip().decode("ascii"))))
        except (ValueError, UnicodeDecodeError):
            raise BadForwarded(detail=f"X-Forwarded-For entry {part[:60]!r}") from None
    return hops


def proxies_for(connection: HTTPConnection) -> TrustedProxies:
    """The app's TrustedProxies (built once from its settings)."""
    state = connection.app.state
    proxies: TrustedProxies | None = getattr(state, "proxies", None)
    if proxies is None:
        proxies = TrustedProxies(state.ctx.settings.trusted_proxies)
        state.proxies = proxies
    return proxies


def client_ip(connection: HTTPConnection) -> str:
    """The real client address: the peer, or from a trusted proxy its X-Forwarded-For (fails closed)."""
    proxies = proxies_for(connection)
    peer = connection.client.host if connection.client else ""
    if not proxies.networks or not proxies.trusts(peer):
        return peer
    raw = [value for name, value in connection.scope["headers"] if name == b"x-forwarded-for"]
    return proxies.client_ip(peer, _forwarded_for(b",".join(raw)) if raw else [])
