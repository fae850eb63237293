"""The forward-auth rule engine on its own: query parsing, named and located rules, verdicts, paths."""

from __future__ import annotations

import time

import pytest

from passgate.errors import BadRequest
from passgate.gate_config import GateRule
from passgate.services.rules import Requirement, RuleBook, Verdict, judge, normalise_path
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
    user = UserRecord("u1", "t", user_name, user_name, b"h", False, at, None, 0)
    session = SessionRecord("s1", "t", "u1", None, at, at, at - checked_ago, uv, "hwk", "", "", at + 3600)
    return Current(session=session, user=user)


@pytest.fixture
def book() -> RuleBook:
    return RuleBook(RULES)


def test_empty_query_has_no_requirement(book: RuleBook) -> None:
    assert book.from_query(b"") == ()


def test_query_options_make_one_requirement(book: RuleBook) -> None:
    (requirement,) = book.from_query(b"user=alice,bob&group=ops&user=carol&max_age=60&max_age=30&uv=1")
    assert requirement == Requirement(
        "query", frozenset({"alice", "bob", "carol"}), frozenset({"ops"}), 30, True
    )


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
    requirement = Requirement("r", frozenset({"alice"}), frozenset({"ops"}))
    assert requirement.admits("alice", frozenset())
    assert requirement.admits("bob", frozenset({"ops", "x"}))
    assert not requirement.admits("bob", frozenset({"dev"}))
    assert Requirement("anyone").admits("bob", frozenset())


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
    def names(host: str | None, path: str | None) -> list[str]:
        return [requirement.name for requirement in book.for_target(host, path)]

    assert names("wiki.example.com:8443", "/admin/users") == ["wiki", "apps"]
    assert names("wiki.example.com", "/admin") == ["wiki", "apps"]
    assert names("wiki.example.com", "/administrator") == ["apps"]
    assert names("wiki.example.com", "/public") == ["apps"]
    assert names("example.com", "/admin") == []
    assert names("other.org", "/admin") == []
    assert names(None, None) == ["wiki", "apps"]  # unknown target: every located rule (fails closed)
    assert names(None, "/admin") == ["wiki", "apps"]
    assert names(None, "/x") == ["apps"]
    assert names("wiki.example.com", None) == ["wiki", "apps"]


def test_no_located_rules_is_cheap() -> None:
    assert RuleBook({"admin": GateRule(groups=("admins",))}).for_target("any", "/x") == ()


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/", "/"),
        ("/admin", "/admin"),
        ("/Admin/Users/", "/admin/users/"),
        ("/public?x=/admin", "/public"),
        ("/admin?/public", "/admin"),
        ("/public#/admin", "/public"),
        ("/public/../admin", "/admin"),
        ("/public/./../admin/", "/admin/"),
        ("//admin", "/admin"),
        ("/a//b///c", "/a/b/c"),
        ("/%2e%2e/admin", "/admin"),
        ("/%2Fadmin", "/admin"),
        ("/%252Fadmin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/admin%3F/public", "/admin"),
        ("/public\\..\\admin", "/admin"),
        ("/admin;jsessionid=1/x", "/admin/x"),
        ("/../../etc", "/etc"),
    ],
)
def test_paths_are_normalised(uri: str, path: str) -> None:
    assert normalise_path(uri) == path


@pytest.mark.parametrize("uri", ["/%ff", "/a%00b", "/a%0Ab", "/%25252525252e"])
def test_paths_that_cannot_be_trusted(uri: str) -> None:
    assert normalise_path(uri) is None


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
    assert GateRule(path="/Admin/").path == "/admin"
    assert GateRule(path="/").path == ""
