"""`passgate doctor --url URL`: what the forward-auth gate will decide for a protected URL, and why.

It walks the same code the gate runs (return-URL check, rule engine, cookie settings), so what it
prints is what happens: whether the session cookie reaches the host, which rules apply, what the
proxy must be trusted for, and where a person is sent to sign in and back.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from passgate.config import Settings
from passgate.services.return_url import allowed_hosts, safe_return_url
from passgate.services.rules import RuleBook, read_path

Echo = Callable[[str], object]
Check = tuple[bool, str, str]


def explain(settings: Settings, url: str, echo: Echo) -> bool:
    """Print the gate's decisions for `url`; True when a person can sign in and come back to it."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        echo(f"✘ {url!r} is not an http(s) URL such as https://app.example.com/path")
        return False
    echo(f"Forward-auth for {url}:")
    checks = [_cookie(settings, host, parts.scheme), _proxies(settings), _return(settings, url)]
    for passed, label, detail in checks:
        echo(f"  {'✔' if passed else '✘'} {label}: {detail}")
    echo("  Rules:")
    for line in _rules(settings, host, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")):
        echo(f"    {line}")
    return all(passed for passed, _, _ in checks)


def _cookie(settings: Settings, host: str, scheme: str) -> Check:
    name = settings.session_cookie_name
    own = (urlsplit(settings.public_url).hostname or "").lower()
    if scheme == "http" and settings.secure_cookies:
        return (
            False,
            "cookie",
            f"{name} is Secure, so browsers never send it to http:// URLs. Serve the app on https.",
        )
    if settings.cookie_domain:
        if host == settings.cookie_domain or host.endswith("." + settings.cookie_domain):
            return True, "cookie", f"{name}; Domain={settings.cookie_domain} reaches {host}"
        return (
            False,
            "cookie",
            (
                f"{name}; Domain={settings.cookie_domain} does not reach {host}. Put the app under "
                f"{settings.cookie_domain} or change PASSGATE_COOKIE_DOMAIN."
            ),
        )
    if host == own:
        return True, "cookie", f"{name} (host-only) reaches {host}, Passgate's own host"
    return (
        False,
        "cookie",
        (
            f"{name} is host-only for {own} and never reaches {host}. Set PASSGATE_COOKIE_DOMAIN to a parent "
            f"domain of both (for example {_common_parent(own, host) or 'your domain'})."
        ),
    )


def _proxies(settings: Settings) -> Check:
    if not settings.trusted_proxies:
        return (
            False,
            "trusted proxies",
            (
                "none: X-Forwarded-* is ignored, so the gate cannot see the original URL (no return to "
                "it, and every host/path rule applies). Set PASSGATE_TRUSTED_PROXIES to the proxy's "
                "address, e.g. 127.0.0.1."
            ),
        )
    return (
        True,
        "trusted proxies",
        (
            f"X-Forwarded-Proto/Host/Uri/For are read only from {', '.join(settings.trusted_proxies)}; "
            "from anywhere else they are ignored"
        ),
    )


def _return(settings: Settings, url: str) -> Check:
    target = safe_return_url(settings, url)
    signin = f"{settings.public_url}/signin?return_to=…"
    if target is not None:
        return True, "redirect", f"not signed in → {signin}, then back to {target}"
    exact, parents = allowed_hosts(settings)
    allowed = ", ".join([*sorted(exact), *(f"*.{parent}" for parent in parents)])
    return (
        False,
        "redirect",
        (
            f"this URL is not an allowed return target (allowed hosts: {allowed}; https only when "
            "Passgate runs on https). People would sign in but not come back: add the host to "
            "PASSGATE_RETURN_HOSTS or set PASSGATE_COOKIE_DOMAIN."
        ),
    )


def _rules(settings: Settings, host: str, target: str) -> list[str]:
    book = RuleBook.for_settings(settings)
    reading = read_path(target)
    located = book.for_target(host, target)
    if reading.ambiguity:
        lines = [f"path is ambiguous ({reading.ambiguity}): every path rule applies"]
    else:
        shown = sorted("/" + "/".join(segments) for segments in reading.readings)
        lines = [f"path as matched (any of): {', '.join(shown)}"]
    if book.located and book.known_host(host) is None:
        lines.append(f"{host} is none of Passgate's own hosts or the rules' hosts: every host rule applies")
    lines += [f"applies by host/path — {requirement.describe()}" for requirement in located]
    others = [requirement for name, requirement in book.named.items() if requirement not in located]
    lines += [f"only with ?rule={requirement.name} — {requirement.describe()}" for requirement in others]
    if not located:
        lines.append(
            "no configured rule applies by itself: anyone signed in passes unless the proxy's URL adds "
            "?group=, ?user=, ?max_age=, ?uv=1 or ?rule="
        )
    return lines


def _common_parent(first: str, second: str) -> str:
    a, b = first.split("."), second.split(".")
    common: list[str] = []
    while a and b and a[-1] == b[-1]:
        common.insert(0, a.pop())
        b.pop()
    return ".".join(common) if len(common) >= 2 else ""
