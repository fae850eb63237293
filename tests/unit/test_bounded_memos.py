"""What a worker remembers stays bounded in entries and in bytes, however many tokens, sessions, Cookie
headers, forwarded headers and queries it sees (issue 9: nothing grows per user or per token)."""

from __future__ import annotations

import secrets
import time
import uuid

from sqlalchemy import Connection

from passgate import metadata
from passgate.gate_config import GateRule
from passgate.memo import Memo
from passgate.services.context import Context
from passgate.services.revocation import SessionMemory
from passgate.services.rules import RuleBook
from passgate.services.sessions import token_for
from passgate.services.tokens import LONGEST_TOKEN, REMEMBERED, SessionTokens
from passgate.store import sessions, users
from passgate.store.records import SessionRecord
from passgate.web.cookies import LONGEST_COOKIE, MAX_REMEMBERED, SessionCookie
from passgate.web.proxies import MEMO_ENTRIES, XF_HOST, XF_URI, TrustedProxies


def test_a_memo_keeps_its_newest_entries_and_no_long_keys() -> None:
    memo: Memo[str, int] = Memo(8, longest=4)
    for number in range(20):
        assert memo.remember(f"k{number}", number, size=len(f"k{number}")) == number
    assert len(memo) <= 8
    assert "k19" in memo and "k0" not in memo
    assert memo.remember("much too long", 1, size=13) == 1
    assert "much too long" not in memo


def test_a_memo_forgets_the_least_recently_remembered_first() -> None:
    memo: Memo[str, int] = Memo(4)
    for key in "abcd":
        memo.remember(key, 0, size=1)
    memo.remember("a", 1, size=1)  # remembered again: now the newest
    memo.remember("e", 0, size=1)  # full: the oldest quarter (b) goes
    assert list(memo) == ["c", "d", "a", "e"]


def test_verified_tokens_are_bounded() -> None:
    tokens = SessionTokens([b"k" * 48])
    at = time.time()
    for _ in range(REMEMBERED + 100):
        token = tokens.issue(
            session_id=secrets.token_urlsafe(24), user_id="u", issued_at=at, expires_at=at + 60
        )
        tokens.verify(token)
    assert len(tokens._verified) <= REMEMBERED
    assert all(len(token) <= LONGEST_TOKEN for token in tokens._verified)


def test_the_cookie_memo_is_bounded(ctx: Context) -> None:
    """The one cookie parser the gate and every route read the session token with."""
    name = ctx.settings.session_cookie_name
    cookie = SessionCookie(name)
    for number in range(MAX_REMEMBERED + 100):
        assert cookie.token(f"{name}=token{number}".encode()) == f"token{number}"
    huge = f"other={'x' * LONGEST_COOKIE}; {name}=mine".encode()
    assert cookie.token(huge) == "mine"
    assert len(cookie._seen) <= MAX_REMEMBERED
    assert huge not in cookie._seen


def test_remembered_session_reads_are_bounded(ctx: Context) -> None:
    reads = ctx.session_reads
    for number in range(reads.entries + 100):
        reads.remember(f"session{number}", (1, None), size=len(f"session{number}"))
    assert len(reads) <= reads.entries


def test_forwarded_header_memos_are_bounded() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    for number in range(MEMO_ENTRIES + 100):
        proxies.trusts(f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}")
        proxies.checked(XF_URI, f"/page/{number}".encode())
        proxies.checked(XF_HOST, f"h{number}.example.com".encode())
        proxies.hops(f"203.0.{number >> 8 & 255}.{number & 255}".encode())
    long_uri = b"/" + b"a" * 4000
    assert proxies.checked(XF_URI, long_uri) == long_uri.decode()
    memos = [proxies._trusted, proxies._clients, proxies.seen, *proxies._values.values()]
    assert all(len(memo) <= MEMO_ENTRIES for memo in memos)
    assert long_uri not in proxies._values[XF_URI]


def test_rule_memos_are_bounded() -> None:
    book = RuleBook({"admin": GateRule(path="/admin", groups=("admins",))})
    for number in range(5000):
        book.from_query(f"group=g{number}".encode())
        book.for_target(f"h{number}.example.com", f"/p/{number}")
    assert max(len(book._queries), len(book._targets)) <= 4096


async def test_session_memory_is_bounded(ctx: Context) -> None:
    memory = SessionMemory(ctx, window=60, max_entries=8)
    at = time.time()

    def start(connection: Connection) -> SessionRecord:
        user = users.create(
            connection,
            tenant_id=ctx.tenant_id,
            user_name=f"m-{uuid.uuid4().hex[:8]}",
            user_key=uuid.uuid4().hex,
            display_name="M",
            user_handle=secrets.token_bytes(32),
            at=at,
        )
        record = SessionRecord(
            id=secrets.token_urlsafe(24), tenant_id=ctx.tenant_id, user_id=user.id, credential_id=None,
            created_at=at, last_seen_at=at, auth_time=at, user_verified=True, amr="hwk", user_agent="",
            ip="", expires_at=at + 3600,
        )  # fmt: skip
        sessions.create(connection, record)
        return record

    for _ in range(30):
        record = await ctx.db.run(start)
        _claims, known = await memory.lookup(token_for(ctx, record))
        assert known.current is not None and known.current.session.id == record.id
    assert len(memory._tokens) <= 8 and len(memory._sessions) <= 8
    assert not memory._reading


def test_authenticator_descriptions_are_bounded_and_security_keys_still_named() -> None:
    yubikey = metadata.describe("cb69481e-8ff7-4039-93ec-0a2729a154a8")  # in the FIDO MDS snapshot only
    assert yubikey is not None and yubikey.name.startswith("YubiKey")
    assert yubikey.icon_light is not None and yubikey.icon_light.startswith("data:image/")
    for _ in range(metadata.DESCRIBED + 10):
        metadata.describe(str(uuid.uuid4()))  # any registration may bring an AAGUID of its own
    assert metadata.describe.cache_info().currsize <= metadata.DESCRIBED


def test_opened_passkey_api_signing_keys_are_bounded() -> None:
    from passgate.services import passkey_tenants

    loaded = passkey_tenants._loaded
    assert isinstance(loaded, Memo)
    before = dict(loaded)
    try:
        for number in range(loaded.entries + 50):
            loaded.remember(f"kid{number}", None, size=len(f"kid{number}"))  # type: ignore[arg-type]
        assert len(loaded) <= loaded.entries
    finally:
        loaded.clear()
        loaded.update(before)
