"""The forward-auth rule engine: which requirements apply to a request, and what they say of a session.

Requirements come from the query of the proxy's auth URL (`?group=admins&max_age=300`, `?rule=NAME`)
and from configured rules whose `host` / `path` match the original request. Every requirement that
applies must pass (configuration can only add restrictions). Within one requirement, users and groups
are alternatives: a listed user or a member of a listed group. Then freshness: `uv` and `max_age` use
the core's step-up rule (`services/stepup.py`).

Paths are matched after normalisation (SECURITY FA-03): query and fragment dropped, percent-decoding
repeated until stable, `\\` read as `/`, `;params` dropped, dot-segments resolved, repeated slashes
collapsed, case folded. Normalising can only make a rule cover more paths, never fewer; a target that
cannot be normalised (or is unknown) is treated as matching every located rule.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import parse_qsl, unquote

from passgate.errors import BadRequest
from passgate.gate_config import GROUP_NAME, GateRule
from passgate.services import stepup
from passgate.services.sessions import Current

QUERY_KEYS = frozenset({"user", "group", "max_age", "uv", "rule"})
_PARAMS = re.compile(r";[^/]*")
_MAX_QUERY_CACHE = 1024


class Verdict(Enum):
    ALLOW = "allow"
    FORBIDDEN = "forbidden"  # signed in, but not a listed user or group member → 403
    RECHECK = "recheck"  # a fresher passkey check (or one with UV) is needed → 401 with a re-check


@dataclass(frozen=True, slots=True)
class Requirement:
    """One rule's demands. Empty users and groups: anyone signed in."""

    name: str
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    max_age: int | None = None
    uv: bool = False

    def admits(self, user_name: str, groups: frozenset[str]) -> bool:
        if not self.users and not self.groups:
            return True
        return user_name in self.users or not self.groups.isdisjoint(groups)

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
        if not requirement.admits(current.user.user_name, groups):
            return Verdict.FORBIDDEN, requirement.name
        fresh.append(requirement)
    for requirement in fresh:
        if not requirement.fresh_enough(current):
            return Verdict.RECHECK, requirement.name
    return Verdict.ALLOW, ""


def requirement_of(name: str, rule: GateRule) -> Requirement:
    return Requirement(name, frozenset(rule.users), frozenset(rule.groups), rule.max_age, rule.uv)


class RuleBook:
    """The configured rules, compiled once; query requirements cached by their raw query string."""

    def __init__(self, rules: dict[str, GateRule]):
        self.named = {name: requirement_of(name, rule) for name, rule in rules.items()}
        self.located = tuple(
            (rule.host, rule.path, self.named[name]) for name, rule in rules.items() if rule.host or rule.path
        )
        self._queries: dict[bytes, tuple[Requirement, ...]] = {}

    def from_query(self, query_string: bytes) -> tuple[Requirement, ...]:
        """Requirements the proxy's query asks for; BadRequest for unknown keys, values or rule names."""
        found = self._queries.get(query_string)
        if found is None:
            found = self._parse_query(query_string)
            if len(self._queries) >= _MAX_QUERY_CACHE:
                self._queries.clear()
            self._queries[query_string] = found
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
                    f"Unknown forward-auth option {key!r}: use {', '.join(sorted(QUERY_KEYS))}. (Caddy "
                    "passes the app's query on unless `uri` has a `?`: use `uri /auth/forward-auth?`.)",
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
            picked.append(
                Requirement("query", frozenset(users), frozenset(groups), min(max_ages, default=None), uv)
            )
        return tuple(picked)

    def _named(self, name: str) -> Requirement:
        requirement = self.named.get(name)
        if requirement is None:
            raise BadRequest(
                f"No forward-auth rule named {name!r} in PASSGATE_FORWARD_AUTH_RULES.", code="bad_rule"
            )
        return requirement

    def for_target(self, host: str | None, path: str | None) -> tuple[Requirement, ...]:
        """Configured rules located at this host and normalised path (unknown host or path: every one)."""
        if not self.located:
            return ()
        bare_host = _strip_port(host) if host else None
        return tuple(
            requirement
            for rule_host, rule_path, requirement in self.located
            if _host_matches(rule_host, bare_host) and _path_matches(rule_path, path)
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


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


def _host_matches(rule_host: str, host: str | None) -> bool:
    if not rule_host or host is None:
        return True
    if rule_host.startswith("*."):
        return host.endswith(rule_host[1:])
    return host == rule_host


def _path_matches(rule_path: str, path: str | None) -> bool:
    if not rule_path or path is None:
        return True
    return path == rule_path or path.startswith(rule_path + "/")


def normalise_path(uri: str) -> str | None:
    """The canonical path of a request target for rule matching, or None when it cannot be trusted."""
    path = uri.split("?", 1)[0].split("#", 1)[0]
    for _ in range(4):
        try:
            decoded = unquote(path, errors="strict")
        except UnicodeDecodeError:
            return None
        if decoded == path:
            break
        path = decoded
    else:
        return None  # still changing after several rounds: deliberately layered encoding
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return None
    path = _PARAMS.sub("", path.replace("\\", "/").split("?", 1)[0].split("#", 1)[0])
    normal = posixpath.normpath("/" + path.lstrip("/"))
    normal = "/" + normal.lstrip("/")  # normpath keeps a leading `//`
    return normal.lower() + ("/" if path.endswith("/") and normal != "/" else "")
