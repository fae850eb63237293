"""The forward-auth gate's settings: named rules, the shared cookie domain and extra return hosts.

Kept apart from `config.py` so that module stays about the server as a whole; `Settings` uses these
types and calls these checks, and every message names the setting and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

RULE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GROUP_NAME = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


class GateRule(BaseModel):
    """One named forward-auth rule (`docs/proxies.md`). Who may pass: a listed user or a member of a
    listed group (both empty: anyone signed in); how fresh the passkey check must be (`max_age`, `uv`).
    With `host` and/or `path` it also applies by itself to every matching request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = ""
    path: str = ""
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    max_age: int | None = Field(default=None, ge=0)
    uv: bool = False

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip().lower()
        if value and not HOST_NAME.match(value.removeprefix("*.")):
            raise ValueError(
                f"rule host {value!r} must be a host name such as 'app.example.com' or '*.example.com'"
            )
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        plain = not any(char in value for char in "?#%\\;") and value.isprintable() and " " not in value
        dots = any(segment.strip(".") == "" for segment in value.split("/") if segment)
        if value and (not value.startswith("/") or not plain or dots):
            raise ValueError(f"rule path {value!r} must be a plain path prefix such as '/admin'")
        return value.rstrip("/").lower() if value != "/" else ""

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for group in value:
            if not GROUP_NAME.match(group):
                raise ValueError(f"rule group {group!r} is not a group name ({GROUP_HELP})")
        return value


GROUP_HELP = "lowercase letters, digits, '_', '.', ':' or '-', at most 64, starting with a letter or digit"


def check_rule_names(rules: dict[str, GateRule]) -> None:
    for name in rules:
        if not RULE_NAME.match(name):
            raise ValueError(
                f"PASSGATE_FORWARD_AUTH_RULES: the rule name {name!r} may only use letters, digits, "
                "'_' and '-'."
            )


def check_return_host(entry: str) -> str:
    """A `PASSGATE_RETURN_HOSTS` entry: `app.example.com`, or `*.example.com` for every subdomain."""
    value = entry.strip().lower()
    if not HOST_NAME.match(value.removeprefix("*.")):
        raise ValueError(
            f"PASSGATE_RETURN_HOSTS entry {entry!r} must be a host name ('app.example.com') or "
            "'*.example.com' (no scheme, port or path)."
        )
    return value


@cache
def public_suffixes() -> PublicSuffixList:
    """The Public Suffix List shipped with the `publicsuffixlist` package (offline; loaded once)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def check_cookie_domain(domain: str, *, public_url: str, origins: list[str]) -> str:
    """The normalised cookie domain; ValueError naming the fix when it is unsafe or cannot work.

    The browser only stores a `Domain=` cookie from a host inside that domain, and sends it to every
    host inside it, so the domain must contain Passgate's own hosts and must not be a public suffix
    (where any stranger's site would receive the session)."""
    value = domain.strip().lower().removeprefix(".")  # RFC 6265 §5.2.3: a leading dot is ignored
    if not value:
        return ""
    setting = "PASSGATE_COOKIE_DOMAIN"
    if _is_ip(value) or not HOST_NAME.match(value):
        raise ValueError(
            f"{setting} must be a domain name such as 'example.com' (no scheme, port, path or IP)."
        )
    if public_suffixes().is_public(value):
        raise ValueError(
            f"{setting} {value!r} is a public suffix: browsers refuse such cookies, and they would reach "
            f"strangers' sites. Use your own registered domain, e.g. 'example.{value}'."
        )
    hosts = [urlsplit(url).hostname or "" for url in [public_url, *origins]]
    for host in hosts:
        if host != value and not host.endswith("." + value):
            raise ValueError(
                f"{setting} {value!r} does not contain {host!r} (from PASSGATE_PUBLIC_URL / "
                f"PASSGATE_ORIGINS): the browser would refuse the cookie. Use a parent domain of {host!r}, "
                f"or unset {setting}."
            )
    return value


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
