"""The forward-auth rule engine on its own: query parsing, named and located rules, verdicts, paths."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatekit import PATH_CLEAR, PATH_ROUTED, PATH_TRICKS, PATH_UNREADABLE, app_routes_to, make_settings
from passgate.errors import BadRequest
from passgate.gate_config import GateRule
from passgate.services import names as user_names
from passgate.services.rules import (
    KnownHosts,
    Requirement,
    RuleBook,
    Verdict,
    judge,
    read_path,
    rule_segments,
)
from passgate.services.sessions import Current
from passgate.store.records import SessionRecord, UserRecord

RULES = {
    "admin": GateRule(groups=("admins",)),
    "ops": GateRule(users=("alice",), groups=("ops",), max_age=300),
    "wiki": GateRule(host="wiki.example.com", path="/Admin/", groups=("editors",)),
    "apps": GateRule(host="*.example.com", uv=True),
}


def current(user_name: str = "bob", *, checked_ago: float = 0.0, uv: bool = True) -> Current:
    at = time.time()
    key = user_names.user_name(user_name, new=False).key
    user = UserRecord("u1", "t", user_name, user_name, b"h", False, at, None, 0, user_key=key)
    session = SessionRecord("s1", "t", "u1", None, at, at, at - checked_ago, uv, "hwk", "", "", at + 3600)
    return Current(session=session, user=user)


@pytest.fixture
def book() -> RuleBook:
    return RuleBook(RULES)


def test_empty_query_has_no_requirement(book: RuleBook) -> None:
    assert book.from_query(b"") == ()


def test_query_options_make_one_requirement(book: RuleBook) -> None:
    (requirement,) = book.from_query(b"user=alice,bob&group=ops&user=carol&max_age=60&max_age=30&uv=1")
    assert requirement == Requirement.of("query", {"alice", "bob", "carol"}, {"ops"}, 30, True)


def test_named_rules_add_to_the_query(book: RuleBook) -> None:
    names = [requirement.name for requirement in book.from_query(b"rule=admin,ops&group=x")]
    assert names == ["admin", "ops", "query"]


@pytest.mark.parametrize(
    "query",
    [
        b"grup=admins",
        b"rule=missing",
        b"max_age=-1",
        b"max_age=1e3",
        b"uv=maybe",
        b"user=",
        b"group=Bad Name",
        b"\xff=1",
    ],
)
def test_bad_queries_are_refused(book: RuleBook, query: bytes) -> None:
    with pytest.raises(BadRequest):
        book.from_query(query)


def test_users_and_groups_are_alternatives() -> None:
    requirement = Requirement.of("r", {"alice"}, {"ops"}, None, False)
    assert judge([requirement], current("alice"), frozenset())[0] is Verdict.ALLOW
    assert judge([requirement], current("bob"), frozenset({"ops", "x"}))[0] is Verdict.ALLOW
    assert judge([requirement], current("bob"), frozenset({"dev"}))[0] is Verdict.FORBIDDEN
    assert Requirement("anyone").admits("bob", frozenset())


def test_a_user_rule_matches_the_name_in_any_spelling(book: RuleBook) -> None:
    """Names are one per person by their canonical key: a rule for `Alice` is a rule for `alice`."""
    (requirement,) = book.from_query(b"user=Alice")
    for spelling in ("alice", "ALICE", "\uff41lice"):  # fullwidth a
        assert judge([requirement], current(spelling), frozenset())[0] is Verdict.ALLOW, spelling
    assert judge([requirement], current("alicia"), frozenset())[0] is Verdict.FORBIDDEN


def test_every_requirement_must_pass_and_membership_decides_first(book: RuleBook) -> None:
    requirements = book.from_query(b"rule=admin&max_age=10")
    assert judge(requirements, current(checked_ago=100), frozenset()) == (Verdict.FORBIDDEN, "admin")
    assert judge(requirements, current(checked_ago=100), frozenset({"admins"})) == (Verdict.RECHECK, "query")
    assert judge(requirements, current(checked_ago=1), frozenset({"admins"})) == (Verdict.ALLOW, "")


def test_max_age_is_the_step_up_rule_and_needs_uv(book: RuleBook) -> None:
    (ops,) = book.from_query(b"rule=ops")
    assert judge([ops], current("alice", checked_ago=10), frozenset())[0] is Verdict.ALLOW
    assert judge([ops], current("alice", checked_ago=400), frozenset())[0] is Verdict.RECHECK
    assert judge([ops], current("alice", checked_ago=10, uv=False), frozenset())[0] is Verdict.RECHECK


def test_uv_requirement() -> None:
    requirement = Requirement("uv", uv=True)
    assert judge([requirement], current(uv=False), frozenset())[0] is Verdict.RECHECK
    assert judge([requirement], current(uv=True), frozenset())[0] is Verdict.ALLOW


def test_located_rules_match_host_and_path(book: RuleBook) -> None:
    def names(host: str | None, uri: str | None) -> list[str]:
        return [requirement.name for requirement in book.for_target(host, uri)]

    assert names("wiki.example.com:8443", "/admin/users?x=1") == ["wiki", "apps"]
    assert names("wiki.example.com", "/admin") == ["wiki", "apps"]
    assert names("wiki.example.com", "/administrator") == ["apps"]
    assert names("wiki.example.com", "/public") == ["apps"]
    assert names("blog.example.com", "/admin") == ["apps"]
    assert names(None, None) == ["wiki", "apps"]  # unknown target: every located rule (fails closed)
    assert names(None, "/admin") == ["wiki", "apps"]
    assert names(None, "/x") == ["apps"]  # unknown host: every host rule, where the path matches
    assert names("evil.org", "/admin") == ["wiki", "apps"]
    assert names("wiki.example.com", None) == ["wiki", "apps"]


def test_an_unknown_host_meets_every_host_rule() -> None:
    rules = {"wiki": GateRule(host="wiki.example.com", groups=("editors",)), "any": GateRule(path="/x")}
    own = KnownHosts({"auth.example.com"}, ["corp.example"])
    book = RuleBook(rules, own)

    def names(host: str, uri: str = "/") -> list[str]:
        return [requirement.name for requirement in book.for_target(host, uri)]

    assert names("wiki.example.com") == ["wiki"]  # a rule's host
    assert names("auth.example.com:443") == []  # Passgate's own host
    assert names("app.corp.example") == []  # inside the cookie domain
    for forged in ("evil.com", "wiki.example.com.evil.com", "example.com", "localhost", "[::1]:8080"):
        assert names(forged) == ["wiki"], forged  # a forged Host never skips a host rule
    assert names("evil.com", "/x/y") == ["wiki", "any"]


def test_known_hosts_come_from_the_settings(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        rp_id="example.com",
        origins=["https://auth.example.com"],
        cookie_domain="example.com",
        forward_auth_rules={"r": {"host": "*.tools.net", "groups": ["ops"]}},
    )
    book = RuleBook.for_settings(settings)
    assert book.known_host("auth.example.com") == "auth.example.com"
    assert book.known_host("app.example.com:8443") == "app.example.com"
    assert book.known_host("a.tools.net") == "a.tools.net"
    assert book.known_host("tools.net") is None
    assert book.known_host("example.com.evil.org") is None
    assert [r.name for r in book.for_target("x.example.com.evil.org", "/")] == ["r"]


def test_no_located_rules_is_cheap() -> None:
    assert RuleBook({"admin": GateRule(groups=("admins",))}).for_target("any", "/x") == ()


def test_answers_are_memoised_per_host_and_path(book: RuleBook) -> None:
    first = book.for_target("wiki.example.com", "/admin/x?a=1")
    assert book.for_target("wiki.example.com", "/admin/x?b=2") is first  # the query is not looked at


ADMIN = RuleBook({"admin": GateRule(host="app.example.com", path="/admin", groups=("admins",))})


@pytest.mark.parametrize("uri", PATH_TRICKS)
def test_every_trick_meets_the_path_rule(uri: str) -> None:
    assert [r.name for r in ADMIN.for_target("app.example.com", uri)] == ["admin"]


@pytest.mark.parametrize("uri", PATH_CLEAR)
def test_clear_paths_stay_outside(uri: str) -> None:
    assert ADMIN.for_target("app.example.com", uri) == ()
    assert not app_routes_to("/admin", uri)


def test_the_table_is_what_apps_do() -> None:
    """Each routed trick really reaches `/admin` in some app's reading; the unreadable ones are ambiguous."""
    assert [uri for uri in PATH_ROUTED if not app_routes_to("/admin", uri)] == []
    assert all(read_path(uri).ambiguity for uri in PATH_UNREADABLE)


PIECES = ["admin", "ADMIN", "Admin", "adm", "in", "%61", "%2561", "%c4%b1", "%ef%bd%81", "public", "x",
          "/", "//", "\\", "%2f", "%2F", "%252f", "%5c", "%ef%bc%8f", ".", "..", "%2e", "%2E", "%252e",
          ";", ";x", "%3b", "%3f", "%23", "?", " ", "%20", "%09", "%e2%80%8b", "%ff", "%25"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=7))
def test_whatever_an_app_routes_under_the_prefix_meets_the_rule(pieces: list[str]) -> None:
    uri = "/" + "".join(pieces)
    if app_routes_to("/admin", uri):
        assert read_path(uri).under(rule_segments("/admin")), uri


@pytest.mark.parametrize(
    ("uri", "readings"),
    [
        ("/", {()}),
        ("/Admin/Users/", {("admin", "users")}),
        ("/public?x=/admin", {("public",)}),
        ("/a//b///c", {("a", "b", "c")}),
        ("/%61dmin", {("%61dmin",), ("admin",)}),
        ("/admin%3F/public", {("admin%3f", "public"), ("admin?", "public"), ("admin",)}),
        ("/admin;jsessionid=1/x", {("admin", "x")}),
        ("/adm%C4%B1n", {("adm%c4%b1n",), ("admin",)}),
        ("/%EF%BC%A1dmin%EF%BC%8Fx", {("%ef%bc%a1dmin%ef%bc%8fx",), ("admin\uff0fx",), ("admin", "x")}),
    ],
)
def test_paths_are_read_every_way(uri: str, readings: set[tuple[str, ...]]) -> None:
    assert read_path(uri) == (frozenset(readings), "")


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("/public/../admin", "dot-segment"),
        ("/%2e%2e/admin", "dot-segment"),
        ("/a/%252e/b", "dot-segment"),
        ("/a/..;/b", "dot-segment"),
        ("/a/.../b", "dot-segment"),
        ("/%ff", "undecodable percent-encoding"),
        ("/a%00b", "control character"),
        ("/a%0Ab", "control character"),
        ("/a%c2%85b", "control or format character"),
        ("/%25252525252e", "percent-encoding nested too deep"),
    ],
)
def test_targets_that_cannot_be_trusted(uri: str, why: str) -> None:
    assert read_path(uri).ambiguity == why


def test_the_apps_own_query_is_ignored_unless_it_is_a_valid_rule(book: RuleBook) -> None:
    # Caddy's `uri /auth/forward-auth` (no `?`) passes the app's query on: never a 400 for it
    assert book.from_proxy(b"x=1", "/page?x=1") == ()
    assert book.from_proxy(b"rule=nope&page=2", "/page?rule=nope&page=2") == ()
    assert book.from_proxy(b"", "/page?x=1") == ()
    # an option a client copies from the proxy's config must not cancel it: valid options still apply
    (requirement,) = book.from_proxy(b"group=admins", "/page?group=admins")
    assert requirement.groups == {"admins"}
    # the proxy's own options (a query unlike the app's) are strict as ever
    with pytest.raises(BadRequest):
        book.from_proxy(b"x=1", "/page?x=2")
    with pytest.raises(BadRequest):
        book.from_proxy(b"x=1", None)


def test_rule_config_is_validated() -> None:
    from pydantic import ValidationError

    for bad in (
        {"path": "admin"},
        {"path": "/a?b"},
        {"host": "https://x"},
        {"groups": ["Bad Name"]},
        {"nope": 1},
    ):
        with pytest.raises(ValidationError):
            GateRule.model_validate(bad)
    for bad_path in ("/a;b", "/a/../b", "/a/./b", "/a b", "/a\tb", "/%61"):
        with pytest.raises(ValidationError):
            GateRule(path=bad_path)
    assert GateRule(path="/Admin/").path == "/admin"
    assert GateRule(path="/").path == ""
