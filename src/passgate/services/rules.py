"""The forward-auth rule engine: which requirements apply to a request, and what they say of a session.

Requirements come from the query of the proxy's auth URL (`?group=admins&max_age=300`, `?rule=NAME`)
and from configured rules whose `host` / `path` match the original request. Every requirement that
applies must pass (configuration can only add restrictions). Within one requirement, users and groups
are alternatives: a listed user or a member of a listed group. Then freshness: `uv` and `max_age` use
the core's step-up rule (`services/stepup.py`).

**Paths.** The gate cannot know how the app behind the proxy reads a request target, and no single
canonical reading is safe: proxies pass the raw target on, so `/admin/../public` reaches an app that
routes it under `/admin/` while a gate that resolved the dots first judged `/public` (the class of
oauth2-proxy CVE-2025-54576 and Authelia CVE-2021-32637). So a path rule applies when *any* reasonable
reading of the target falls under it: the raw path and each percent-decoding depth, each read with and
without `\\` as `/` and with and without NFKC (UAX #15: fullwidth letters and slashes), with `;params`
dropped, repeated slashes collapsed, trailing dots and spaces of a segment dropped (Windows), and case
folded the ways apps compare (dotless i U+0131 upper-cases to `I`, long s U+017F to `S`). A target in
which any reading has a `.` or `..` segment, an undecodable or deeply layered encoding, or a control or
format character is ambiguous: it meets every path rule (the host still has to match). Each distinct
(host, path) is worked out once and remembered.

**Hosts.** A forwarded host that is not one of Passgate's own (public URL, origins, the cookie domain
and its subdomains, the hosts named by rules) is unknown and meets every host rule: a forged `Host`
never skips a rule. An unknown target (no trusted proxy) meets every located rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from passgate.errors import BadRequest, ConfigError
from passgate.gate_config import GROUP_NAME, GateRule
from passgate.memo import Memo
from passgate.services import names, stepup
from passgate.services.sessions import Current

if TYPE_CHECKING:
    from passgate.config import Settings

QUERY_KEYS = frozenset({"user", "group", "max_age", "uv", "rule"})
MAX_DECODING = 3  # percent-decoding rounds read; a target still encoded after them is ambiguous
_MAX_CACHE = 4096
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CUT = re.compile(r"[?#]")
_PARAMS = re.compile(r";[^/]*")
_STRANGE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})  # controls, format, unassigned, breaks


class Verdict(Enum):
    ALLOW = "allow"
    FORBIDDEN = "forbidden"  # signed in, but not a listed user or group member → 403
    RECHECK = "recheck"  # a fresher passkey check (or one with UV) is needed → 401 with a re-check


@dataclass(frozen=True, slots=True)
class Requirement:
    """One rule's demands. Empty users and groups: anyone signed in."""

    name: str
    users: frozenset[str] = frozenset()  # as written, for people
    groups: frozenset[str] = frozenset()
    max_age: int | None = None
    uv: bool = False
    user_keys: frozenset[str] = frozenset()  # what is compared: any spelling of a name matches

    @classmethod
    def of(
        cls, name: str, users: Iterable[str], groups: Iterable[str], max_age: int | None, uv: bool
    ) -> Requirement:
        """A requirement whose users are matched by their canonical key (`services/names.py`)."""
        listed = frozenset(users)
        keys = frozenset(names.user_name(user, new=False, field="user").key for user in listed)
        return cls(name, listed, frozenset(groups), max_age, uv, keys)

    def admits(self, user_key: str, groups: frozenset[str]) -> bool:
        if not self.users and not self.groups:
            return True
        return user_key in self.user_keys or not self.groups.isdisjoint(groups)

    def fresh_enough(self, current: Current) -> bool:
        if self.max_age is not None and not stepup.is_recent(current, self.max_age):
            return False
        return current.session.user_verified or not self.uv

    def describe(self) -> str:
        """For people (`passgate doctor`): who passes and how fresh their check must be."""
        who = [f"user {name}" for name in sorted(self.users)] + [
            f"group {name}" for name in sorted(self.groups)
        ]
        text = f"{self.name}: " + (" or ".join(who) if who else "anyone signed in")
        if self.max_age is not None:
            text += f", with a passkey check (UV) in the last {self.max_age} s"
        elif self.uv:
            text += ", with user verification"
        return text


def judge(
    requirements: Iterable[Requirement], current: Current, groups: frozenset[str]
) -> tuple[Verdict, str]:
    """The verdict for a session under every requirement, and the name of the requirement that decided."""
    fresh: list[Requirement] = []
    for requirement in requirements:
        if not requirement.admits(current.user.user_key, groups):
            return Verdict.FORBIDDEN, requirement.name
        fresh.append(requirement)
    for requirement in fresh:
        if not requirement.fresh_enough(current):
            return Verdict.RECHECK, requirement.name
    return Verdict.ALLOW, ""


def requirement_of(name: str, rule: GateRule) -> Requirement:
    try:
        return Requirement.of(name, rule.users, rule.groups, rule.max_age, rule.uv)
    except BadRequest as exc:
        raise ConfigError(f"PASSGATE_FORWARD_AUTH_RULES, rule {name!r}: {exc.message}") from None


# --------------------------------------------------------------------------- reading a request target

Segments = tuple[str, ...]


class PathReading(NamedTuple):
    """Every way the gate reads a target's path (as folded segments), or why it cannot be trusted."""

    readings: frozenset[Segments]
    ambiguity: str = ""  # "" when clear; otherwise why the target meets every path rule

    def under(self, prefix: Segments) -> bool:
        """Whether a rule on `prefix` applies: an ambiguous target, or any reading under it."""
        if self.ambiguity or not prefix:
            return True
        size = len(prefix)
        return any(reading[:size] == prefix for reading in self.readings)


def read_path(uri: str) -> PathReading:
    """The readings of a raw request target (`/path?query`): raw and each decoding depth, each with and
    without NFKC and with and without `\\` as `/` (they move segment boundaries), whole and cut at a
    decoded `?` or `#` (before or after `;params` are dropped)."""
    path = uri.split("?", 1)[0]  # RFC 9112 §3.2: the raw query starts at the first `?`
    layers = [path]
    for _ in range(MAX_DECODING):
        try:
            decoded = unquote(path, errors="strict")
        except UnicodeDecodeError:
            return PathReading(frozenset(), "undecodable percent-encoding")
        if decoded == path:
            break
        layers.append(decoded)
        path = decoded
    else:
        if unquote(path) != path:
            return PathReading(frozenset(), "percent-encoding nested too deep")
    readings: set[Segments] = set()
    for layer in layers:
        forms, ambiguity = _forms(layer)
        if ambiguity:
            return PathReading(frozenset(), ambiguity)
        for text in {variant for form in forms for variant in (form, form.replace("\\", "/"))}:
            for variant in {text, _cut(text), _cut(_PARAMS.sub("", text))}:
                segments = _segments(variant)
                if segments is None:
                    return PathReading(frozenset(), "dot-segment")
                readings.add(segments)
    return PathReading(frozenset(readings))


def _cut(text: str) -> str:
    return _CUT.split(text, maxsplit=1)[0]


def rule_segments(path: str) -> Segments:
    """A configured rule path (plain, checked by `GateRule`) folded like a target's path."""
    return _segments(_fold(unicodedata.normalize("NFKC", path))) or ()


def _forms(text: str) -> tuple[set[str], str]:
    """`text` case-folded, as is and after NFKC; or why it is ambiguous."""
    if text.isascii():
        if _ASCII_CONTROL.search(text):
            return set(), "control character"
        return {text.lower()}, ""
    compatible = unicodedata.normalize("NFKC", text)
    if any(unicodedata.category(char) in _STRANGE for char in text + compatible):
        return set(), "control or format character"
    return {_fold(text), _fold(compatible)}, ""


def _fold(text: str) -> str:
    return text.lower() if text.isascii() else "".join(_fold_char(char) for char in text)


def _fold_char(char: str) -> str:
    """One character as apps that compare case-insensitively may see it: an ASCII letter or digit when
    one of them would (U+0131 dotless i upper-cases to "I", U+017F long s to "S", U+0130 is "I" with a
    dot above), never a separator (those come only from NFKC, read as a form of its own)."""
    if char.isascii():
        return char.lower()
    for form in (char.lower(), char.upper()):
        if form.isascii() and form.isalnum():
            return form.lower()
    base = "".join(part for part in unicodedata.normalize("NFKD", char) if not unicodedata.combining(part))
    return base.lower() if base.isascii() and base.isalnum() else char.casefold()


def _segments(path: str) -> Segments | None:
    """The non-empty segments with `;params` and trailing dots/spaces dropped; None for a dot-segment."""
    segments: list[str] = []
    for raw in path.split("/"):
        segment = raw.split(";", 1)[0].lstrip(" ").rstrip(". ")
        if not segment:
            if raw.split(";", 1)[0].strip(" "):  # `.`, `..`, `...`, `. .`: a dot-segment somewhere
                return None
            continue
        segments.append(segment)
    return tuple(segments)


# --------------------------------------------------------------------------- hosts


class KnownHosts:
    """Passgate's own hosts and the hosts its rules name; anything else is unknown (meets every rule)."""

    def __init__(self, exact: Iterable[str] = (), parents: Iterable[str] = ()):
        self.exact = frozenset(exact)
        self.parents = tuple(sorted(set(parents)))

    def __contains__(self, host: str) -> bool:
        return host in self.exact or any(host.endswith("." + parent) for parent in self.parents)


def known_hosts(settings: Settings) -> KnownHosts:
    """Public URL, origins and the cookie domain (with its subdomains); `RuleBook` adds the rules' hosts."""
    exact = {(urlsplit(url).hostname or "").lower() for url in (settings.public_url, *settings.origins)}
    parents = []
    if settings.cookie_domain:
        exact.add(settings.cookie_domain)
        parents.append(settings.cookie_domain)
    exact.discard("")
    return KnownHosts(exact, parents)


def strip_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def _host_matches(rule_host: str, host: str | None) -> bool:
    if not rule_host or host is None:
        return True
    if rule_host.startswith("*."):
        return host.endswith(rule_host[1:])
    return host == rule_host


# --------------------------------------------------------------------------- the book


class Located(NamedTuple):
    host: str
    path: Segments
    requirement: Requirement


class RuleBook:
    """The configured rules, compiled once; answers memoised by raw query and by (host, raw path)."""

    def __init__(self, rules: dict[str, GateRule], hosts: KnownHosts | None = None):
        self.named = {name: requirement_of(name, rule) for name, rule in rules.items()}
        self.located = tuple(
            Located(rule.host, rule_segments(rule.path), self.named[name])
            for name, rule in rules.items()
            if rule.host or rule.path
        )
        base = hosts or KnownHosts()
        rule_hosts = [rule.host for rule in self.located if rule.host]
        self.hosts = KnownHosts(
            base.exact | {host for host in rule_hosts if not host.startswith("*.")},
            [*base.parents, *(host[2:] for host in rule_hosts if host.startswith("*."))],
        )
        self._queries: Memo[bytes, tuple[Requirement, ...]] = Memo(_MAX_CACHE)
        self._app_queries: Memo[bytes, tuple[Requirement, ...]] = Memo(_MAX_CACHE)
        self._targets: Memo[tuple[str | None, str | None], tuple[Requirement, ...]] = Memo(_MAX_CACHE)

    @classmethod
    def for_settings(cls, settings: Settings) -> RuleBook:
        return cls(settings.forward_auth_rules, known_hosts(settings))

    # ---- the proxy's query

    def from_proxy(self, query: bytes, uri: str | None) -> tuple[Requirement, ...]:
        """Requirements from the auth URL's query. When it is the app's own query (Caddy's `uri` without
        `?` passes it on: it equals the query in X-Forwarded-Uri), it is no 400: options that parse
        still apply, since a client could otherwise cancel a configured `?group=admins` by asking for
        `/page?group=admins`; anything else is the app's business and ignored."""
        if not query:
            return ()
        if uri is not None and uri.partition("?")[2].encode() == query:
            found = self._app_queries.get(query)
            if found is None:
                try:
                    found = self._parse_query(query)
                except BadRequest:
                    found = ()
                self._app_queries.remember(query, found, size=len(query))
            return found
        return self.from_query(query)

    def from_query(self, query_string: bytes) -> tuple[Requirement, ...]:
        """Requirements the proxy's query asks for; BadRequest for unknown keys, values or rule names."""
        found = self._queries.get(query_string)
        if found is None:
            found = self._parse_query(query_string)
            self._queries.remember(query_string, found, size=len(query_string))
        return found

    def _parse_query(self, query_string: bytes) -> tuple[Requirement, ...]:
        try:
            pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, max_num_fields=50)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("The forward-auth query cannot be parsed.", code="bad_rule") from None
        users: set[str] = set()
        groups: set[str] = set()
        max_ages: list[int] = []
        uv = False
        picked: list[Requirement] = []
        for key, value in pairs:
            if key not in QUERY_KEYS:
                raise BadRequest(
                    f"Unknown forward-auth option {key!r}: use {', '.join(sorted(QUERY_KEYS))}.",
                    code="bad_rule",
                )
            if key == "user":
                users.update(_items(value, key))
            elif key == "group":
                groups.update(_group(item) for item in _items(value, key))
            elif key == "max_age":
                max_ages.append(_seconds(value))
            elif key == "uv":
                uv = uv or _flag(value)
            else:
                picked.extend(self._named(item) for item in _items(value, key))
        if users or groups or max_ages or uv:
            try:
                picked.append(Requirement.of("query", users, groups, min(max_ages, default=None), uv))
            except BadRequest as exc:
                raise BadRequest(exc.message, code="bad_rule") from None
        return tuple(picked)

    def _named(self, name: str) -> Requirement:
        requirement = self.named.get(name)
        if requirement is None:
            raise BadRequest(
                f"No forward-auth rule named {name!r} in PASSGATE_FORWARD_AUTH_RULES.", code="bad_rule"
            )
        return requirement

    # ---- the original request

    def for_target(self, host: str | None, uri: str | None) -> tuple[Requirement, ...]:
        """Configured rules located at this forwarded host and raw target (None: unknown, every rule)."""
        if not self.located:
            return ()
        path = uri.split("?", 1)[0] if uri is not None else None
        key = (host, path)
        found = self._targets.get(key)
        if found is None:
            found = self._locate(host, path)
            self._targets.remember(key, found, size=len(host or "") + len(path or ""))
        return found

    def known_host(self, host: str | None) -> str | None:
        """The bare host when it is one of the known hosts; None when unknown (every host rule applies)."""
        if host is None:
            return None
        bare = strip_port(host)
        return bare if bare in self.hosts else None

    def _locate(self, host: str | None, path: str | None) -> tuple[Requirement, ...]:
        bare = self.known_host(host)
        reading = read_path(path) if path is not None else None
        return tuple(
            rule.requirement
            for rule in self.located
            if _host_matches(rule.host, bare) and (reading is None or reading.under(rule.path))
        )


def _items(value: str, key: str) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise BadRequest(f"The forward-auth option {key!r} is empty.", code="bad_rule")
    return items


def _group(value: str) -> str:
    if not GROUP_NAME.match(value):
        raise BadRequest(f"{value!r} is not a group name.", code="bad_rule")
    return value


def _seconds(value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise BadRequest("max_age must be a whole number of seconds.", code="bad_rule")
    return int(value)


def _flag(value: str) -> bool:
    if value not in ("1", "0", "true", "false"):
        raise BadRequest("uv must be 1 or 0.", code="bad_rule")
    return value in ("1", "true")
