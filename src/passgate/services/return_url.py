"""Where a person may be sent after signing in: the one return-URL check (ASVS 3.7.2; the open redirects of
oauth2-proxy GHSA-qqxw-m5fj-f7gv and Authelia GHSA-36f2-fcrx-fp4j).

Accepted: a path on Passgate itself (`/account`), or an absolute `http(s)://host[:port]/…` URL whose host
is allowed — Passgate's own hosts (public URL, origins), `PASSGATE_RETURN_HOSTS` entries (`*.x` for
subdomains), and every host inside `PASSGATE_COOKIE_DOMAIN`. Anything a browser might read differently
from this parser is refused rather than repaired: backslashes, whitespace and control characters
(browsers strip tabs and newlines), non-ASCII, userinfo, encoded slashes or dots in the path, a scheme
without `//`, a trailing dot on the host, an empty or bad port. `http://` is allowed only while Passgate
itself runs on http (local development), so a return never downgrades an https deployment.

The URL may arrive under any of the names gates use (`RETURN_PARAMETERS`): Passgate's `return_to`,
`rd` (oauth2-proxy, Authelia) and `next`; `requested` picks it, and every one goes through this check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from passgate.config import Settings

MAX_LENGTH = 4096
# RFC 3986 characters only: no space, no control, no backslash, no `"<>^`{|}`, no non-ASCII.
_URL_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
_ABSOLUTE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>[/?#].*)?$")
_HOST_PORT = re.compile(r"^(?P<host>[a-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Percent-encoded `/`, `\`, `.`, `%` and controls in the path: decoded by some layer they become `//evil`.
_ENCODED_TRICK = re.compile(r"%(?:2[fFeE5]|5[cC]|[01][0-9a-fA-F]|7[fF])")
_BAD_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")


RETURN_PARAMETERS = ("return_to", "rd", "next")


def requested(params: Mapping[str, str]) -> str | None:
    """The return URL a request asks for, under the first of `RETURN_PARAMETERS` that it gives."""
    for name in RETURN_PARAMETERS:
        value = params.get(name)
        if value:
            return value
    return None


def safe_return_url(settings: Settings, url: str | None) -> str | None:
    """`url` (normalised) when it is safe to send the person to after sign-in; otherwise None.

    A relative path comes back unchanged; an absolute URL comes back with a lowercase scheme and host.
    """
    if not url or len(url) > MAX_LENGTH or not _URL_CHARS.match(url) or _BAD_PERCENT.search(url):
        return None
    if url.startswith("/"):
        return url if _safe_path(url) else None
    match = _ABSOLUTE.match(url)
    if match is None:
        return None
    scheme = match["scheme"].lower()
    rest = match["rest"] or "/"
    host_port = _host_port(match["authority"].lower())
    if host_port is None or not _safe_path(rest if rest.startswith("/") else "/" + rest):
        return None
    host, port = host_port
    if scheme != "https" and not (scheme == "http" and not settings.secure_cookies):
        return None
    if not is_allowed_host(settings, host):
        return None
    return f"{scheme}://{host}{':' + port if port else ''}{rest}"


def _safe_path(path: str) -> bool:
    """A path that stays on its host: one leading slash, no encoded separators in the path part."""
    if path.startswith(("//", "/\\")):
        return False
    path_part = re.split(r"[?#]", path, maxsplit=1)[0]
    return _ENCODED_TRICK.search(path_part) is None


def _host_port(authority: str) -> tuple[str, str] | None:
    """(host, port) of a plain `host[:port]` authority, or None (userinfo, IPv6, bad labels or port)."""
    match = _HOST_PORT.match(authority)
    if match is None:
        return None
    host, port = match["host"], match["port"] or ""
    if not all(_LABEL.match(label) for label in host.split(".")):
        return None  # empty label (`a..b`, trailing dot) or a label with a bad hyphen
    if port and not 0 < int(port) <= 65535:
        return None
    return host, port


def is_allowed_host(settings: Settings, host: str) -> bool:
    """Whether `host` (lowercase, no port) may receive a person after sign-in."""
    exact, parents = _allowed(settings)
    if host in exact:
        return True
    return any(host.endswith("." + parent) for parent in parents)


def allowed_hosts(settings: Settings) -> tuple[frozenset[str], tuple[str, ...]]:
    """(exact hosts, domains whose subdomains are allowed): for `passgate doctor`."""
    return _allowed(settings)


@cache
def _allowed_for(
    public_url: str, origins: tuple[str, ...], extra: tuple[str, ...], cookie_domain: str
) -> tuple[frozenset[str], tuple[str, ...]]:
    from urllib.parse import urlsplit

    exact = {urlsplit(url).hostname or "" for url in (public_url, *origins)}
    parents: list[str] = []
    for entry in extra:
        if entry.startswith("*."):
            parents.append(entry[2:])
        else:
            exact.add(entry)
    if cookie_domain:
        exact.add(cookie_domain)
        parents.append(cookie_domain)
    exact.discard("")
    return frozenset(exact), tuple(parents)


def _allowed(settings: Settings) -> tuple[frozenset[str], tuple[str, ...]]:
    return _allowed_for(
        settings.public_url, tuple(settings.origins), tuple(settings.return_hosts), settings.cookie_domain
    )
