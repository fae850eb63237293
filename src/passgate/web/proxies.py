"""Trusted proxies: `X-Forwarded-*` is honoured only when the direct peer is in `PASSGATE_TRUSTED_PROXIES`
(ASVS 4.1.3; oauth2-proxy CVE-2026-40575); from anyone else it is ignored. From a trusted peer, a value
that cannot be parsed fails closed (authentik CVE-2024-47070): the request is refused instead of being
judged on a guess.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from starlette.requests import HTTPConnection
from starlette.types import Scope

from passgate.errors import BadRequest
from passgate.memo import Memo

MEMO_ENTRIES = 4096  # per memo: addresses, each header's values, X-Forwarded-For lists, their sets
MAX_HOPS = 32
MAX_URI = 8192
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_URI = re.compile(r"^/[\x21-\x7e]*$")
_METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$")
XFF, XF_PROTO, XF_HOST = b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"
XF_URI, XF_METHOD = b"x-forwarded-uri", b"x-forwarded-method"
COOKIE = b"cookie"
_COLLECTED = frozenset({XFF, XF_PROTO, XF_HOST, XF_URI, XF_METHOD, COOKIE})
_JOIN = {XFF: b",", COOKIE: b"; "}


class BadForwarded(BadRequest):
    code = "bad_forwarded"
    message = "The proxy sent X-Forwarded-* headers that cannot be parsed."


class Forwarded(NamedTuple):
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
    """The configured proxy networks, with memos of addresses and header values already judged
    (forward-auth reads these headers on every request of every protected app)."""

    def __init__(self, cidrs: Iterable[str]):
        self.networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
        self._trusted: Memo[str, bool] = Memo(MEMO_ENTRIES)
        self._values: dict[bytes, Memo[bytes, str]] = {name: Memo(MEMO_ENTRIES) for name in _CHECKS}
        self._clients: Memo[bytes, list[str]] = Memo(MEMO_ENTRIES)
        self.seen: Memo[tuple[str, bytes | None, bytes | None, bytes | None, bytes | None], Forwarded] = Memo(
            MEMO_ENTRIES
        )

    def trusts(self, address: str) -> bool:
        known = self._trusted.get(address)
        if known is None:
            known = self._trusted.remember(
                address, bool(self.networks) and self._judge(address), size=len(address)
            )
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

    def checked(self, name: bytes, raw: bytes) -> str:
        """A forwarded header's value once validated (BadForwarded when it cannot be)."""
        memo = self._values[name]
        value = memo.get(raw)
        if value is None:
            try:
                value = _CHECKS[name](raw.decode("ascii"))
            except UnicodeDecodeError:
                raise BadForwarded(detail=f"non-ASCII {name.decode()}") from None
            memo.remember(raw, value, size=len(raw))
        return value

    def hops(self, raw: bytes) -> list[str]:
        """X-Forwarded-For, parsed once per distinct value (BadForwarded when it cannot be)."""
        hops = self._clients.get(raw)
        if hops is None:
            hops = self._clients.remember(raw, _forwarded_for(raw), size=len(raw))
        return hops


def collect(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The `X-Forwarded-*` and `Cookie` headers in one pass. Repeats are joined: X-Forwarded-For with
    `,`, Cookie with `; `, any other with a NUL byte, which no check accepts (a repeat fails closed)."""
    values: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in _COLLECTED:
            if name in values:
                value = values[name] + _JOIN.get(name, b"\0") + value
            values[name] = value
    return values


def read_forwarded(
    proxies: TrustedProxies, scope: Scope, values: dict[bytes, bytes] | None = None
) -> Forwarded:
    """The proxy's view of the original request; BadForwarded when a trusted proxy's headers are malformed.
    `values` is `collect(scope["headers"])` when the caller has it already."""
    client = scope.get("client")
    peer = client[0] if client else ""
    if not proxies.trusts(peer):
        return Forwarded(False, peer)
    get = (values if values is not None else collect(scope["headers"])).get
    key = (peer, get(XFF), get(XF_PROTO), get(XF_HOST), get(XF_METHOD))
    known = proxies.seen.get(key)  # these repeat from request to request; the URI varies
    if known is None:
        size = sum(len(part) for part in key if part is not None)
        known = proxies.seen.remember(key, _parse(proxies, *key), size=size)
    uri = get(XF_URI)
    if uri is None:
        return known
    return Forwarded(
        True, known.client_ip, known.proto, known.host, proxies.checked(XF_URI, uri), known.method
    )


def _parse(
    proxies: TrustedProxies,
    peer: str,
    hops: bytes | None,
    proto: bytes | None,
    host: bytes | None,
    method: bytes | None,
) -> Forwarded:
    checked = proxies.checked
    return Forwarded(
        True,
        proxies.client_ip(peer, _forwarded_for(hops)) if hops is not None else peer,
        checked(XF_PROTO, proto) if proto is not None else None,
        checked(XF_HOST, host) if host is not None else None,
        None,
        checked(XF_METHOD, method) if method is not None else None,
    )


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


_CHECKS: dict[bytes, Callable[[str], str]] = {
    b"x-forwarded-proto": _proto,
    b"x-forwarded-host": _host,
    b"x-forwarded-uri": _uri,
    b"x-forwarded-method": _method,
}


def _forwarded_for(raw: bytes) -> list[str]:
    """Each hop of X-Forwarded-For; any empty, unparsable or excessive list fails closed."""
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
    if not proxies.trusts(peer):
        return peer
    raw = [value for name, value in connection.scope["headers"] if name == b"x-forwarded-for"]
    return proxies.client_ip(peer, proxies.hops(b",".join(raw)) if raw else [])
