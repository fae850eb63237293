"""Every relying-party check of W3C WebAuthn L3 §7.2 (verifying an authentication assertion) as a negative
test, plus the challenge rules of §13.5.3 (single use, bound to its purpose, expiry), through the `/auth`
endpoints of the ASGI app. Test names carry the id of the check they break (A-01…A-26 follow §7.2's steps).

Every refusal asserts: 400 with the expected `code` (`sign_in_failed` for every verification failure),
that nothing was written (no session, credential record unchanged: sign count, flags, last use), and,
when the response named a readable challenge, that the challenge is burnt.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import delete, func, select, update

from flows import ORIGIN, unique_name
from passgate.services import login as login_service
from passgate.services import users as admin
from passgate.services.context import Context
from passgate.store.models import challenges, credentials
from seckit import (
    Mutation,
    after_verify,
    assert_refused,
    audit_kinds,
    build_context,
    challenge_stored,
    client_data,
    client_for,
    credential_row,
    db_state,
    expire_challenge,
    module_app,
    pop,
    put,
    resign,
    set_client_data_bytes,
    settings_for,
    write_lock_seen,
)
from softkey import SoftAuthenticator, SoftCredential, b64url_decode, b64url_encode, rsa_key

FINISH = "/auth/login/finish"
TLS_ORIGIN = "https://app.localhost:8443"


@dataclass
class Account:
    name: str
    authenticator: SoftAuthenticator
    user_id: str

    @property
    def credential(self) -> SoftCredential:
        return self.authenticator.last_credential

    @property
    def handle(self) -> bytes:
        return self.credential.user_handle


class Login:
    """One browser signing in, with helpers to refuse and accept assertions."""

    def __init__(self, http: httpx.AsyncClient, ctx: Context, origin: str = ORIGIN):
        self.http = http
        self.ctx = ctx
        self.origin = origin

    async def sign_up(self, authenticator: SoftAuthenticator | None = None, **knobs: Any) -> Account:
        """A new account with one passkey; the browser is signed out again afterwards."""
        authenticator = authenticator or SoftAuthenticator()
        name = unique_name()
        options = await self.post("/auth/register/begin", {"user_name": name})
        credential = authenticator.create(options.json(), origin=self.origin, **knobs)
        response = await self.post("/auth/register/finish", credential)
        assert response.status_code == 200, response.text
        self.http.cookies.clear()
        return Account(name=name, authenticator=authenticator, user_id=response.json()["user_id"])

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.http.post(path, json=body if body is not None else {})

    async def options(self, user_name: str | None = None) -> dict[str, Any]:
        response = await self.post("/auth/login/begin", {"user_name": user_name} if user_name else {})
        assert response.status_code == 200, response.text
        options: dict[str, Any] = response.json()
        return options

    def get(self, account: Account, options: dict[str, Any], **knobs: Any) -> dict[str, Any]:
        knobs.setdefault("origin", self.origin)
        knobs.setdefault("credential_id", account.credential.credential_id)
        return account.authenticator.get(options, **knobs)

    async def refused(
        self,
        account: Account,
        code: str = "sign_in_failed",
        *,
        user_name: str | None = None,
        mutate: Mutation | None = None,
        burnt: bool = True,
        status: int = 400,
        **knobs: Any,
    ) -> httpx.Response:
        options = await self.options(user_name)
        before = db_state(self.ctx)
        credential = self.get(account, options, **knobs)
        if mutate is not None:
            mutate(credential)
        response = await self.post(FINISH, credential)
        assert_refused(response, code, status)
        assert db_state(self.ctx) == before, "a refused sign-in wrote something"
        if burnt:
            assert not challenge_stored(self.ctx, options), "the challenge survived a failed finish"
            honest = self.get(account, options, origin=self.origin)
            assert_refused(await self.post(FINISH, honest), "sign_in_failed")
            assert db_state(self.ctx) == before
        return response

    async def accepted(
        self, account: Account, *, user_name: str | None = None, mutate: Mutation | None = None, **knobs: Any
    ) -> httpx.Response:
        options = await self.options(user_name)
        credential = self.get(account, options, **knobs)
        if mutate is not None:
            mutate(credential)
        response = await self.post(FINISH, credential)
        assert response.status_code == 200, response.text
        assert response.json()["user_id"] == account.user_id
        me = await self.http.get("/auth/me")
        assert me.status_code == 200 and me.json()["user_id"] == account.user_id
        self.http.cookies.clear()
        return response


ctx, app = module_app("login")


@pytest.fixture
async def client(ctx: Context, app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(ctx, ORIGIN, app) as http:
        yield http


@pytest.fixture
def login(client: httpx.AsyncClient, ctx: Context) -> Login:
    return Login(client, ctx)


@pytest.fixture
async def alice(login: Login) -> Account:
    return await login.sign_up()


@pytest.fixture
async def bob(login: Login) -> Account:
    return await login.sign_up()


async def custom_login(tmp_path: Path, origin: str = ORIGIN, **overrides: Any) -> tuple[Context, Login]:
    context = build_context(settings_for(tmp_path / "custom", **overrides))
    return context, Login(client_for(context, origin), context, origin)


def flagged(ctx: Context, account: Account) -> bool:
    return credential_row(ctx, account.credential.credential_id)["flagged_at"] is not None


# --- the JSON envelope


def _attestation_shaped(credential: dict[str, Any]) -> None:
    response = credential["response"]
    credential["response"] = {"clientDataJSON": response["clientDataJSON"], "attestationObject": "oA"}


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(pop("response"), id="response-missing"),
        pytest.param(put("response", value="x"), id="response-not-object"),
        pytest.param(_attestation_shaped, id="attestation-response"),
        pytest.param(pop("id"), id="id-missing"),
        pytest.param(put("id", value=7), id="id-not-string"),
        pytest.param(put("id", value="a+b/AAAA"), id="id-std-base64"),
        pytest.param(put("id", value="AAAAAA=="), id="id-padded"),
        pytest.param(pop("rawId"), id="rawId-missing"),
        pytest.param(pop("type"), id="type-missing"),
        pytest.param(put("type", value="avocado-toast"), id="type-wrong"),
        pytest.param(put("type", value=None), id="type-null"),
    ],
)
async def test_A01_not_an_assertion_response(login: Login, alice: Account, mutate: Mutation) -> None:
    await login.refused(alice, "invalid_request", mutate=mutate, burnt=False)


@pytest.mark.parametrize("field", ["clientDataJSON", "authenticatorData", "signature"])
@pytest.mark.parametrize(
    "value", [pytest.param(None, id="missing"), 42, "", "not base64url!", "QUJD+/==", "QUJDRA=="]
)
async def test_A02_response_member_malformed(login: Login, alice: Account, field: str, value: Any) -> None:
    mutate = pop("response", field) if value is None else put("response", field, value=value)
    await login.refused(alice, "invalid_request", mutate=mutate, burnt=False)


@pytest.mark.parametrize("value", [42, ["AAAA"], {"id": "AAAA"}, "not base64url!", "QUJDRA=="])
async def test_A02_user_handle_not_a_base64url_string(login: Login, alice: Account, value: Any) -> None:
    await login.refused(
        alice, "invalid_request", mutate=put("response", "userHandle", value=value), burnt=False
    )


@pytest.mark.parametrize("field", ["authenticatorData", "signature", "userHandle"])
async def test_A02_member_of_impossible_base64url_length(login: Login, alice: Account, field: str) -> None:
    """Passes the schema's alphabet but cannot decode: refused like any failed sign-in, challenge burnt."""
    await login.refused(alice, mutate=put("response", field, value="AAAAA"))


# --- A-03..A-08: whose credential


async def test_A03_credential_not_in_allow_credentials(login: Login, alice: Account) -> None:
    """Alice's second passkey, added after a named `login/begin`, is not in that ceremony's list."""
    options = await login.options(alice.name)
    listed = [b64url_decode(item["id"]) for item in options["publicKey"]["allowCredentials"]]
    assert listed == [alice.credential.credential_id]
    assert (await login.post(FINISH, login.get(alice, await login.options()))).status_code == 200
    second = SoftAuthenticator("EdDSA")
    add = (await login.post("/auth/credentials/begin")).json()
    assert (
        await login.post("/auth/credentials/finish", second.create(add, origin=ORIGIN))
    ).status_code == 200
    login.http.cookies.clear()
    before = db_state(login.ctx)
    credential = second.get(options, origin=ORIGIN, credential_id=second.last_credential.credential_id)
    assert b64url_decode(credential["response"]["userHandle"]) == alice.handle
    assert_refused(await login.post(FINISH, credential), "sign_in_failed")
    assert db_state(login.ctx) == before
    assert not challenge_stored(login.ctx, options)


async def test_A04_named_login_with_another_accounts_credential(
    login: Login, alice: Account, bob: Account
) -> None:
    await login.refused(bob, user_name=alice.name)


async def test_A04_signed_in_recheck_with_another_accounts_credential(
    login: Login, alice: Account, bob: Account
) -> None:
    """A re-check begun while signed in identifies its user by the session: another account's passkey
    neither refreshes that session nor switches the browser to the other account."""
    await login.accepted(alice)
    await login.post(FINISH, login.get(alice, await login.options()))  # signed in as Alice again
    session = (await login.http.get("/auth/me")).json()
    options = await login.options()
    assert options["publicKey"]["userVerification"] == "required"
    before = db_state(login.ctx)
    assert_refused(await login.post(FINISH, login.get(bob, options)), "sign_in_failed")
    assert db_state(login.ctx) == before
    assert (await login.http.get("/auth/me")).json() == session


@pytest.mark.parametrize("named", [False, True], ids=["usernameless", "named"])
async def test_A05_user_handle_not_the_owners(login: Login, alice: Account, named: bool) -> None:
    await login.refused(alice, user_name=alice.name if named else None, user_handle=os.urandom(32))


async def test_A06_usernameless_without_user_handle(login: Login, alice: Account) -> None:
    await login.refused(alice, user_handle=None)


async def test_A06_named_without_user_handle_accepted(login: Login, alice: Account) -> None:
    await login.accepted(alice, user_name=alice.name, user_handle=None)


async def test_A07_user_handle_of_one_account_with_credential_of_another(
    login: Login, alice: Account, bob: Account
) -> None:
    """YSA-2026-02: no cross-account lookup by credential id alone."""
    await login.refused(alice, user_handle=bob.handle)
    await login.refused(bob, user_handle=alice.handle)


async def _failure_bodies(login: Login, alice: Account, bob: Account) -> dict[str, httpx.Response]:
    """The answer to each kind of failure in a named ceremony for Alice's name."""
    stranger = SoftAuthenticator()
    stranger.create(
        {"publicKey": {"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": "AAAA"}}, origin=ORIGIN
    )
    cases: dict[str, Any] = {
        "unknown-credential": lambda o: stranger.get(
            o, origin=ORIGIN, credential_id=stranger.last_credential.credential_id
        ),
        "bad-signature": lambda o: login.get(alice, o, tamper_signature=True),
        "wrong-user-handle": lambda o: login.get(alice, o, user_handle=bob.handle),
        "other-account": lambda o: login.get(bob, o),
        "user-not-present": lambda o: login.get(alice, o, up=False),
    }
    answers = {}
    for name, make in cases.items():
        options = await login.options(alice.name)
        answers[name] = await login.post(FINISH, make(options))
    return answers


async def test_A08_failures_are_indistinguishable(login: Login, alice: Account, bob: Account) -> None:
    """V-06: unknown credential, bad signature, wrong userHandle, another account's credential: the
    same status and the same body."""
    answers = await _failure_bodies(login, alice, bob)
    first = next(iter(answers.values()))
    for name, response in answers.items():
        assert response.status_code == first.status_code == 400, name
        assert (
            response.json() == first.json() == {"error": first.json()["error"], "code": "sign_in_failed"}
        ), name
        assert response.headers.get("content-type") == first.headers.get("content-type")


async def test_A08_failures_take_similar_time(login: Login, alice: Account, bob: Account) -> None:
    """An unknown credential spends a signature verification like a known one (verify_unknown); a wrong
    userHandle is judged only after the signature. A lenient in-process sanity check: medians of 30
    attempts each within 3x of each other."""
    stranger = SoftAuthenticator()
    stranger.create(
        {"publicKey": {"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": "AAAA"}}, origin=ORIGIN
    )
    makers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "unknown-credential": lambda o: stranger.get(
            o, origin=ORIGIN, credential_id=stranger.last_credential.credential_id
        ),
        "bad-signature": lambda o: login.get(alice, o, tamper_signature=True),
        "wrong-user-handle": lambda o: login.get(alice, o, user_handle=bob.handle),
    }
    timings: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(30):
        for name, make in makers.items():  # interleaved, so that load changes hit every kind alike
            credential = make(await login.options())
            started = time.perf_counter()
            response = await login.post(FINISH, credential)
            timings[name].append(time.perf_counter() - started)
            assert response.status_code == 400
    medians = {name: statistics.median(values) for name, values in timings.items()}
    assert max(medians.values()) < 3 * min(medians.values()), medians


# --- A-09..A-15: clientDataJSON, rpIdHash


def _client_data_bytes(edit: Any) -> Mutation:
    def mutate(credential: dict[str, Any]) -> None:
        set_client_data_bytes(credential, edit(client_data(credential)))

    return mutate


async def test_A09_client_data_not_utf8(login: Login, alice: Account) -> None:
    def invalid(data: dict[str, Any]) -> bytes:
        return json.dumps({**data, "origin": "@@"}).encode().replace(b"@@", b"\xc3\x28")

    await login.refused(alice, mutate=_client_data_bytes(invalid), burnt=False)


@pytest.mark.parametrize(
    "raw", [b"not json", b"[]", b"null", b"{", b"\x00"], ids=["text", "array", "null", "truncated", "nul"]
)
async def test_A09_client_data_not_a_json_object(login: Login, alice: Account, raw: bytes) -> None:
    await login.refused(alice, client_data_json=raw, burnt=False)


async def test_A09_client_data_with_bom_accepted(login: Login, alice: Account) -> None:
    await login.accepted(alice, client_data_bom=True)


async def test_A09_client_data_extra_keys_accepted(login: Login, alice: Account) -> None:
    await login.accepted(
        alice, extra_client_data={"other_keys_can_be_added_here": "x", "tokenBinding": "unused"}
    )


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"type": "webauthn.create"}, id="webauthn.create"),
        pytest.param({"drop_client_data": ["type"]}, id="missing"),
        pytest.param({"type": ""}, id="empty"),
        pytest.param({"extra_client_data": {"type": ["webauthn.get"]}}, id="not-string"),
        pytest.param({"type": "payment.get"}, id="payment.get"),
    ],
)
async def test_A10_client_data_type_not_get(login: Login, alice: Account, knobs: dict[str, Any]) -> None:
    await login.refused(alice, **knobs)


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"drop_client_data": ["challenge"]}, id="missing"),
        pytest.param({"extra_client_data": {"challenge": 1}}, id="not-string"),
        pytest.param({"challenge": ""}, id="empty"),
        pytest.param({"challenge": "***"}, id="not-base64url"),
        pytest.param({"challenge": b64url_encode(os.urandom(32))}, id="not-issued"),
    ],
)
async def test_A11_challenge_wrong(login: Login, alice: Account, knobs: dict[str, Any]) -> None:
    """V-13: the challenge is compared (none named: nothing to burn, nothing written)."""
    await login.refused(alice, burnt=False, **knobs)


async def test_A11_challenge_padded(login: Login, alice: Account) -> None:
    options = await login.options()
    before = db_state(login.ctx)
    padded = options["publicKey"]["challenge"] + "="
    assert_refused(await login.post(FINISH, login.get(alice, options, challenge=padded)), "sign_in_failed")
    assert db_state(login.ctx) == before


async def test_A11_challenge_expired(tmp_path: Path) -> None:
    ctx, login = await custom_login(tmp_path, challenge_ttl=30)
    async with login.http:
        alice = await login.sign_up()
        options = await login.options()
        expire_challenge(ctx, options)
        before = db_state(ctx)
        assert_refused(await login.post(FINISH, login.get(alice, options)), "sign_in_failed")
        assert db_state(ctx) == before
        assert not challenge_stored(ctx, options)
    ctx.db.dispose()


async def test_A11_challenge_bound_to_another_session(
    login: Login, alice: Account, app: Any, ctx: Context
) -> None:
    """A re-check challenge issued to Alice's session cannot be finished by a browser without it."""
    await login.accepted(alice)
    await login.post(FINISH, login.get(alice, await login.options()))
    options = await login.options()  # signed in: bound to this session
    async with client_for(ctx, ORIGIN, app) as other_browser:
        before = db_state(ctx)
        credential = login.get(alice, options)
        assert_refused(await other_browser.post(FINISH, json=credential), "sign_in_failed")
        assert db_state(ctx) == before
    assert not challenge_stored(ctx, options)


async def test_A12_replay_of_an_accepted_assertion(login: Login, alice: Account) -> None:
    options = await login.options()
    credential = login.get(alice, options)
    assert (await login.post(FINISH, credential)).status_code == 200
    login.http.cookies.clear()
    before = db_state(login.ctx)
    assert_refused(await login.post(FINISH, credential), "sign_in_failed")
    assert db_state(login.ctx) == before


# --- the verify runs with no transaction open; the write sees what changed meanwhile


race_ctx, race_app = module_app("races", "race_", both_databases=True)


@pytest.fixture
async def racing(race_ctx: Context, race_app: Any) -> AsyncIterator[Login]:
    """A browser on a database of its own, SQLite and then PostgreSQL (each locks differently)."""
    async with client_for(race_ctx, ORIGIN, race_app) as http:
        yield Login(http, race_ctx)


@pytest.fixture
def meanwhile(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], None]], None]:
    """Run `event` right after the next sign-in's signature check and before its write: what another
    request (in another worker or instance) could do while this one verifies."""

    def arrange(event: Callable[[], None]) -> None:
        after_verify(monkeypatch, event)

    return arrange


def _update_credential(ctx: Context, account: Account, **values: Any) -> Callable[[], None]:
    statement = update(credentials).where(credentials.c.credential_id == account.credential.credential_id)
    return lambda: ctx.db.transact(lambda connection: connection.execute(statement.values(**values)))


async def test_A12_verify_holds_no_write_lock(racing: Login, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite one write lock serves the whole database: a finish that held it through its signature
    check would make every other worker wait for that check. During the check, another connection
    takes the lock at once."""
    login, alice = racing, await racing.sign_up()
    if not login.ctx.db.is_sqlite:
        pytest.skip("SQLite's database-wide write lock")
    taken = write_lock_seen(monkeypatch, login_service, "verify_assertion", login.ctx)
    await login.accepted(alice)
    assert taken == [True]


async def test_usernameless_options_are_made_with_no_write_lock(
    racing: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A usernameless `login/begin` reads nothing: its options are made before the unit of work that
    stores the challenge, so SQLite's write lock is held for the insert alone."""
    login = racing
    if not login.ctx.db.is_sqlite:
        pytest.skip("SQLite's database-wide write lock")
    taken = write_lock_seen(monkeypatch, login_service, "begin_authentication", login.ctx)
    assert (await login.options())["publicKey"]["challenge"]
    assert taken == [True]


async def test_A12_challenge_used_by_another_finish_meanwhile(
    racing: Login, meanwhile: Callable[[Callable[[], None]], None]
) -> None:
    """SQLite: the challenge is read, then consumed after the check. (PostgreSQL consumes it before the
    check, in the same transaction: another finish waits on its row lock, and then finds nothing.)"""
    login, alice = racing, await racing.sign_up()
    if not login.ctx.db.is_sqlite:
        pytest.skip("PostgreSQL holds the challenge's row lock through the check")
    options = await login.options()
    challenge = b64url_decode(options["publicKey"]["challenge"])
    statement = delete(challenges).where(challenges.c.challenge == challenge)
    meanwhile(lambda: login.ctx.db.transact(lambda connection: connection.execute(statement)))
    before = db_state(login.ctx)
    assert_refused(await login.post(FINISH, login.get(alice, options)), "sign_in_failed")
    assert db_state(login.ctx) == before


async def test_A22_counter_raised_meanwhile_flags_the_credential(
    racing: Login, meanwhile: Callable[[Callable[[], None]], None]
) -> None:
    """A clone signed in elsewhere between this sign-in's check and its write: the write compares the
    counter with the stored one again, sees it did not increase, and flags the credential."""
    login, alice = racing, await racing.sign_up()
    meanwhile(_update_credential(login.ctx, alice, sign_count=40))
    options = await login.options()
    assert_refused(await login.post(FINISH, login.get(alice, options, sign_count=5)), "sign_in_failed")
    row = credential_row(login.ctx, alice.credential.credential_id)
    assert row["flagged_at"] is not None and row["sign_count"] == 40
    assert not challenge_stored(login.ctx, options)


@pytest.mark.parametrize("change", ["flagged", "disabled", "deleted"])
async def test_A22_credential_changed_meanwhile_is_refused(
    racing: Login, meanwhile: Callable[[Callable[[], None]], None], change: str
) -> None:
    login, alice = racing, await racing.sign_up()
    ctx = login.ctx
    if change == "flagged":
        meanwhile(_update_credential(ctx, alice, flagged_at=time.time(), flag_reason="test"))
    elif change == "disabled":
        meanwhile(lambda: admin.set_disabled(ctx, alice.name, True))
    else:
        statement = delete(credentials).where(credentials.c.credential_id == alice.credential.credential_id)
        meanwhile(lambda: ctx.db.transact(lambda connection: connection.execute(statement)))
    options = await login.options()
    sessions_before = set(db_state(ctx)["sessions"])
    assert_refused(await login.post(FINISH, login.get(alice, options)), "sign_in_failed")
    assert not challenge_stored(ctx, options)
    assert set(db_state(ctx)["sessions"]) <= sessions_before, "a session was opened"


tls_ctx, tls_app = module_app("tls", "tls_", origins=[TLS_ORIGIN])


@pytest.fixture
async def tls_login(tls_ctx: Context, tls_app: Any) -> AsyncIterator[Login]:
    async with client_for(tls_ctx, TLS_ORIGIN, tls_app) as http:
        yield Login(http, tls_ctx, TLS_ORIGIN)


ORIGIN_MATRIX = [
    pytest.param("http://app.localhost:8443", id="http-scheme"),
    pytest.param("https://app.localhost:9443", id="other-port"),
    pytest.param("https://app.localhost", id="default-port"),
    pytest.param("https://other.localhost:8443", id="other-subdomain"),
    pytest.param("https://localhost:8443", id="parent-domain"),
    pytest.param("https://localhost.evil.com", id="localhost.evil.com"),
    pytest.param("https://app.localhost.evil.com:8443", id="suffix-evil"),
    pytest.param("null", id="null"),
    pytest.param(TLS_ORIGIN + "/", id="trailing-slash"),
    pytest.param(TLS_ORIGIN + "/auth", id="path-appended"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("origin", ORIGIN_MATRIX)
async def test_A13_origin_not_allowed(tls_login: Login, origin: str) -> None:
    account = await tls_login.sign_up()
    await tls_login.refused(account, origin=origin)


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"drop_client_data": ["origin"]}, id="missing"),
        pytest.param({"extra_client_data": {"origin": None}}, id="null"),
    ],
)
async def test_A13_origin_missing_or_not_string(tls_login: Login, knobs: dict[str, Any]) -> None:
    account = await tls_login.sign_up()
    await tls_login.refused(account, **knobs)


async def test_A13_tls_origin_accepted(tls_login: Login) -> None:
    await tls_login.accepted(await tls_login.sign_up())


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"cross_origin": True}, id="crossOrigin-true"),
        pytest.param(
            {"cross_origin": None, "extra_client_data": {"crossOrigin": "yes"}}, id="crossOrigin-string"
        ),
        pytest.param({"top_origin": ORIGIN}, id="topOrigin-same"),
        pytest.param({"top_origin": "https://evil.example"}, id="topOrigin-other"),
    ],
)
async def test_A14_cross_origin_or_top_origin(login: Login, alice: Account, knobs: dict[str, Any]) -> None:
    await login.refused(alice, **knobs)


@pytest.mark.parametrize("rp_id", ["localhost:8000", "example.com", ORIGIN, "LOCALHOST", "sub.localhost", ""])
async def test_A15_rp_id_hash_wrong(login: Login, alice: Account, rp_id: str) -> None:
    await login.refused(alice, rp_id=rp_id)


# --- A-16..A-21: authenticator data, signature


def _short_auth_data(credential: dict[str, Any], key: SoftCredential) -> None:
    resign(credential, key, auth_data=b64url_decode(credential["response"]["authenticatorData"])[:36])


async def test_A16_authenticator_data_shorter_than_37_bytes(login: Login, alice: Account) -> None:
    await login.refused(alice, mutate=lambda c: _short_auth_data(c, alice.credential))


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"auth_data_trailing": b"\x00"}, id="leftover-bytes"),
        pytest.param({"ed": True}, id="ED-without-extensions"),
        pytest.param({"extensions": {"hmac-secret": True}, "ed": False}, id="extensions-without-ED"),
        pytest.param({"at": True}, id="AT-without-attested-data"),
    ],
)
async def test_A16_authenticator_data_malformed(login: Login, alice: Account, knobs: dict[str, Any]) -> None:
    await login.refused(alice, **knobs)


async def test_A16_extensions_with_ed_accepted(login: Login, alice: Account) -> None:
    await login.accepted(alice, extensions={"credProtect": 1})


async def test_A17_user_not_present(login: Login, alice: Account) -> None:
    """V-04."""
    await login.refused(alice, up=False)


async def test_A18_uv_required_by_policy(tmp_path: Path) -> None:
    """V-05/V-14: with PASSGATE_USER_VERIFICATION=required, UV=0 is refused even when the client
    pretends the options said `discouraged`; UV=1 is accepted."""
    ctx, login = await custom_login(tmp_path, user_verification="required")
    async with login.http:
        alice = await login.sign_up()
        options = await login.options()
        assert options["publicKey"]["userVerification"] == "required"
        options["publicKey"]["userVerification"] = "discouraged"
        before = db_state(ctx)
        assert_refused(await login.post(FINISH, login.get(alice, options, uv=False)), "sign_in_failed")
        assert db_state(ctx) == before
        assert not challenge_stored(ctx, options)
        await login.refused(alice, user_name=alice.name, uv=False)
        await login.accepted(alice, uv=True)
    ctx.db.dispose()


async def test_A18_uv_not_required_accepts_uv_false(login: Login, alice: Account) -> None:
    options = await login.options()
    assert options["publicKey"]["userVerification"] == "preferred"
    response = await login.post(FINISH, login.get(alice, options, uv=False))
    assert response.status_code == 200
    assert (await login.http.get("/auth/me")).json()["user_verified"] is False


async def test_A18_signed_in_recheck_requires_uv(login: Login, alice: Account) -> None:
    await login.post(FINISH, login.get(alice, await login.options()))
    assert (await login.http.get("/auth/me")).status_code == 200
    options = await login.options()
    assert options["publicKey"]["userVerification"] == "required"
    before = db_state(login.ctx)
    assert_refused(await login.post(FINISH, login.get(alice, options, uv=False)), "sign_in_failed")
    assert db_state(login.ctx) == before


async def test_A19_backup_state_without_backup_eligible(login: Login, alice: Account) -> None:
    await login.refused(alice, bs=True)


async def test_A20_backup_eligibility_appears(login: Login, alice: Account) -> None:
    await login.refused(alice, be=True)


async def test_A20_backup_eligibility_disappears(login: Login) -> None:
    account = await login.sign_up(SoftAuthenticator(backup_eligible=True))
    await login.refused(account, be=False, bs=False)


async def test_A20_backup_state_may_change(login: Login) -> None:
    account = await login.sign_up(SoftAuthenticator(backup_eligible=True))
    assert credential_row(login.ctx, account.credential.credential_id)["backup_state"] is False
    await login.accepted(account, bs=True)
    assert credential_row(login.ctx, account.credential.credential_id)["backup_state"] is True


def _flip_auth_data_bit(credential: dict[str, Any]) -> None:
    data = bytearray(b64url_decode(credential["response"]["authenticatorData"]))
    data[-1] ^= 0x01  # the low bit of the sign count: still well-formed, no longer what was signed
    credential["response"]["authenticatorData"] = b64url_encode(bytes(data))


def _spaced_client_data(credential: dict[str, Any]) -> None:
    set_client_data_bytes(credential, json.dumps(client_data(credential), indent=1).encode())


@pytest.mark.parametrize(
    ("knobs", "mutate"),
    [
        pytest.param({"tamper_signature": True}, None, id="signature-bit-flip"),
        pytest.param({}, _flip_auth_data_bit, id="authenticator-data-bit-flip"),
        pytest.param({}, _spaced_client_data, id="client-data-changed"),
        pytest.param({"sign_with": ec.generate_private_key(ec.SECP256R1())}, None, id="other-key"),
        pytest.param({"signature": bytes.fromhex("3006020100020100")}, None, id="V22-psychic-r0-s0"),
        pytest.param({"signature": b""}, None, id="empty"),
        pytest.param({"signature": b"\x00" * 64}, None, id="raw-r-s-zero"),
    ],
)
async def test_A21_signature_invalid(
    login: Login, alice: Account, knobs: dict[str, Any], mutate: Mutation | None
) -> None:
    if knobs.get("signature") == b"":
        await login.refused(alice, "invalid_request", burnt=False, **knobs)  # schema: empty string
        return
    await login.refused(alice, mutate=mutate, **knobs)
    assert not flagged(login.ctx, alice)


async def test_A21_signature_of_another_credential(login: Login, alice: Account, bob: Account) -> None:
    await login.refused(alice, sign_with=bob.credential)


# --- A-22..A-24: the counter and the record


async def test_A22_counter_not_increasing_flags_the_credential(login: Login, alice: Account) -> None:
    await login.accepted(alice)  # stored count 1
    row = credential_row(login.ctx, alice.credential.credential_id)
    assert row["sign_count"] == 1
    options = await login.options()
    response = await login.post(FINISH, login.get(alice, options, sign_count=1))
    assert_refused(response, "sign_in_failed")
    row = credential_row(login.ctx, alice.credential.credential_id)
    assert row["flagged_at"] is not None and row["sign_count"] == 1
    assert "credential_flagged" in audit_kinds(login.ctx)
    assert not challenge_stored(login.ctx, options)

    # Flagged: even a valid assertion with a higher counter is refused, and changes nothing.
    before = db_state(login.ctx)
    assert_refused(
        await login.post(FINISH, login.get(alice, await login.options(), sign_count=50)), "sign_in_failed"
    )
    assert_refused(
        await login.post(FINISH, login.get(alice, await login.options(alice.name), sign_count=51)),
        "sign_in_failed",
    )
    assert db_state(login.ctx) == before

    admin.clear_flag(login.ctx, alice.credential.credential_id)
    assert not flagged(login.ctx, alice)
    assert "credential_unblocked" in audit_kinds(login.ctx)
    await login.accepted(alice, sign_count=52)
    assert credential_row(login.ctx, alice.credential.credential_id)["sign_count"] == 52


async def test_A22_counter_lower_flags_the_credential(login: Login) -> None:
    account = await login.sign_up(sign_count=10)
    options = await login.options()
    assert_refused(await login.post(FINISH, login.get(account, options, sign_count=9)), "sign_in_failed")
    assert flagged(login.ctx, account)
    assert credential_row(login.ctx, account.credential.credential_id)["sign_count"] == 10


async def test_A22_both_counters_zero_accepted(login: Login) -> None:
    """V-19: authenticators without a counter (always 0) sign in again and again."""
    account = await login.sign_up(SoftAuthenticator(counter_step=0))
    for _ in range(3):
        await login.accepted(account)
    row = credential_row(login.ctx, account.credential.credential_id)
    assert row["sign_count"] == 0 and row["flagged_at"] is None


async def test_A22_bogus_signature_with_low_counter_does_not_flag(login: Login, alice: Account) -> None:
    await login.accepted(alice, sign_count=5)
    await login.refused(alice, sign_count=1, tamper_signature=True)
    assert not flagged(login.ctx, alice)


async def test_A22_wrong_account_with_low_counter_does_not_flag(
    login: Login, alice: Account, bob: Account
) -> None:
    """A valid signature is not enough to flag: the ceremony's own checks (userHandle) come first."""
    await login.accepted(alice, sign_count=5)
    await login.refused(alice, sign_count=1, user_handle=bob.handle)
    await login.refused(alice, sign_count=1, user_name=bob.name)
    assert not flagged(login.ctx, alice)


async def test_A23_counter_back_to_zero_is_a_regression(login: Login, alice: Account) -> None:
    await login.accepted(alice, sign_count=3)
    options = await login.options()
    assert_refused(await login.post(FINISH, login.get(alice, options, sign_count=0)), "sign_in_failed")
    assert flagged(login.ctx, alice)


async def test_A24_record_updated_after_success_only(login: Login, alice: Account) -> None:
    row = credential_row(login.ctx, alice.credential.credential_id)
    assert row["uv_initialized"] is True
    await login.accepted(alice, uv=False, sign_count=4)
    after = credential_row(login.ctx, alice.credential.credential_id)
    assert after["sign_count"] == 4
    assert after["uv_initialized"] is True, "uvInitialized only ever goes false -> true"
    assert after["last_used_at"] >= row["last_used_at"]
    assert after["last_verified_at"] == row["last_verified_at"]


async def test_A24_uv_initialized_goes_true(login: Login) -> None:
    account = await login.sign_up(uv=False)
    assert credential_row(login.ctx, account.credential.credential_id)["uv_initialized"] is False
    await login.accepted(account, uv=False)
    assert credential_row(login.ctx, account.credential.credential_id)["uv_initialized"] is False
    await login.accepted(account, uv=True)
    assert credential_row(login.ctx, account.credential.credential_id)["uv_initialized"] is True


async def test_A24_disabled_account_changes_nothing(login: Login, alice: Account) -> None:
    admin.set_disabled(login.ctx, alice.name, True)
    await login.refused(alice)
    await login.refused(alice, user_name=alice.name)


# --- N-02, V-01..V-03


@pytest.mark.parametrize(
    ("alg", "other"),
    [
        pytest.param("RS256", lambda: ec.generate_private_key(ec.SECP256R1()), id="RSA-key-ECDSA-signature"),
        pytest.param("ES256", lambda: rsa_key(1), id="EC-key-RSA-signature"),
        pytest.param(
            "EdDSA", lambda: ec.generate_private_key(ec.SECP256R1()), id="Ed25519-key-ECDSA-signature"
        ),
        pytest.param("ES256", ed25519.Ed25519PrivateKey.generate, id="EC-key-Ed25519-signature"),
    ],
)
async def test_A25_signature_algorithm_not_the_keys(login: Login, alg: str, other: Any) -> None:
    key = rsa_key() if alg == "RS256" else None
    account = await login.sign_up(SoftAuthenticator(alg, private_key=key))  # type: ignore[arg-type]
    await login.refused(account, sign_with=other())


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
async def test_A25_each_algorithm_accepted(login: Login, alg: str) -> None:
    key = rsa_key() if alg == "RS256" else None
    await login.accepted(await login.sign_up(SoftAuthenticator(alg, private_key=key)))  # type: ignore[arg-type]


async def test_A26_request_options(login: Login, alice: Account) -> None:
    first, second = await login.options(), await login.options()
    for options in (first, second):
        assert len(b64url_decode(options["publicKey"]["challenge"])) >= 16
        assert options["publicKey"]["rpId"] == "localhost"
        assert options["publicKey"]["userVerification"] == "preferred"
        assert options["publicKey"]["allowCredentials"] == []
    assert first["publicKey"]["challenge"] != second["publicKey"]["challenge"]
    named = (await login.options(alice.name))["publicKey"]
    assert [b64url_decode(item["id"]) for item in named["allowCredentials"]] == [
        alice.credential.credential_id
    ]


async def test_A26_unknown_user_gets_a_stable_plausible_list(login: Login, alice: Account) -> None:
    """V-06: for an unknown name the options look like a real user's and stay the same."""
    name = unique_name()
    decoy = (await login.options(name))["publicKey"]["allowCredentials"]
    assert decoy and decoy == (await login.options(name))["publicKey"]["allowCredentials"]
    assert decoy != (await login.options(unique_name()))["publicKey"]["allowCredentials"]
    real = (await login.options(alice.name))["publicKey"]["allowCredentials"]
    # its length is drawn from the tenant's accounts (this module's tests give some a second passkey)
    per_user = select(func.count()).select_from(credentials).group_by(credentials.c.user_id).subquery()
    most = login.ctx.db.transact(lambda c: c.execute(select(func.max(per_user.c[0]))).scalar_one())
    assert 1 <= len(decoy) <= most
    assert set(decoy[0]) == set(real[0]), (decoy, real)
    assert decoy[0]["type"] == real[0]["type"]
    assert len(b64url_decode(decoy[0]["id"])) == len(b64url_decode(real[0]["id"]))
    assert decoy[0].get("transports")


async def test_A26_user_without_credentials_looks_unknown(login: Login, alice: Account) -> None:
    """V-02: an account with no passkey gets the decoy list; Alice's valid assertion is refused for it."""
    name = unique_name("nopasskey")
    admin.add(login.ctx, name)
    listed = (await login.options(name))["publicKey"]["allowCredentials"]
    # As many decoys as some account of this module's database has passkeys (services/decoys.py): the
    # other tests' accounts decide how many, and none is Alice's.
    assert listed and alice.credential.credential_id not in {b64url_decode(item["id"]) for item in listed}
    await login.refused(alice, user_name=name)


async def test_N02_credential_id_alone_signs_nobody_in(login: Login, alice: Account) -> None:
    """V-03: a known credential id with a bogus signature, or with no assertion at all."""
    options = await login.options()
    forged = login.get(alice, options)
    forged["response"]["signature"] = "AAAA"
    before = db_state(login.ctx)
    assert_refused(await login.post(FINISH, forged), "sign_in_failed")
    only_id = {"id": alice.credential.id_b64, "rawId": alice.credential.id_b64, "type": "public-key"}
    assert_refused(await login.post(FINISH, only_id), "invalid_request")
    assert db_state(login.ctx) == before


async def test_V01_id_differs_from_raw_id_with_garbage_signature(login: Login, alice: Account) -> None:
    """GitLab 585333: `id` and `rawId` disagree; the counter must not move either way."""
    await login.refused(alice, id_override=b64url_encode(os.urandom(32)), tamper_signature=True)
    await login.refused(alice, id_override=b64url_encode(os.urandom(32)))
    await login.refused(alice, user_name=alice.name, raw_id_override=os.urandom(32))
    assert credential_row(login.ctx, alice.credential.credential_id)["sign_count"] == 0


# --- challenges bound to their purpose


async def _signed_in_with_link(login: Login) -> tuple[Account, str]:
    account = await login.sign_up()
    await login.post(FINISH, login.get(account, await login.options()))
    link = await login.post("/auth/create-device-link")
    assert link.status_code == 200, link.text
    return account, link.json()["passphrase"]


async def _issue(login: Login, purpose: str, passphrase: str) -> dict[str, Any]:
    paths = {
        "register": ("/auth/register/begin", {"user_name": unique_name()}),
        "login": ("/auth/login/begin", {}),
        "add": ("/auth/credentials/begin", {}),
        "device": ("/auth/device/begin", {"token": passphrase}),
    }
    path, body = paths[purpose]
    response = await login.post(path, body)
    assert response.status_code == 200, response.text
    options: dict[str, Any] = response.json()
    return options


FINISHES = {
    "register": ("/auth/register/finish", "ceremony_failed"),
    "login": (FINISH, "sign_in_failed"),
    "add": ("/auth/credentials/finish", "ceremony_failed"),
    "device": ("/auth/device/finish", "ceremony_failed"),
}
CROSSED = [(issued, used) for issued in FINISHES for used in FINISHES if issued != used]


@pytest.mark.parametrize(
    ("issued", "used"), CROSSED, ids=[f"{i}-challenge-to-{u}-finish" for i, u in CROSSED]
)
async def test_challenge_purpose_cannot_be_crossed(login: Login, issued: str, used: str) -> None:
    """Issue 2 item 5 (R-09/A-11): a challenge issued for one ceremony never finishes another; the
    attempt burns it."""
    account, passphrase = await _signed_in_with_link(login)
    options = await _issue(login, issued, passphrase)
    challenge = options["publicKey"]["challenge"]
    if used == "login":
        credential = login.get(account, {"publicKey": {"challenge": challenge, "rpId": "localhost"}})
    else:
        template = {
            "publicKey": {
                "challenge": challenge,
                "rp": {"id": "localhost", "name": "Passgate"},
                "user": {
                    "id": b64url_encode(account.handle),
                    "name": account.name,
                    "displayName": account.name,
                },
                "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
            }
        }
        credential = SoftAuthenticator().create(template, origin=ORIGIN)
    before = db_state(login.ctx)
    path, code = FINISHES[used]
    assert_refused(await login.post(path, credential), code)
    assert db_state(login.ctx) == before
    assert not challenge_stored(login.ctx, options)
