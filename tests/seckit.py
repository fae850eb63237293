"""Helpers for the WebAuthn security tests (tests/web/test_security_*.py, tests/ceremony/).

Each negative test breaks one relying-party check of W3C WebAuthn L3 §7.1/§7.2 with one
software-authenticator knob and then asserts three things: the answer (a 4xx with the expected `code`),
that nothing was written (`db_state` before and after), and, where the response got as far as the
challenge, that the challenge is burnt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import cbor2
import httpx
import pytest
from sqlalchemy import Connection, func, select, update

from appkit import make_settings
from passgate.config import Settings
from passgate.services.context import Context
from passgate.store.models import audit_events, challenges, credentials, device_links, sessions, users
from softkey import PrivateKey, SoftCredential, b64url_decode, b64url_encode, sign

Mutation = Callable[[dict[str, Any]], None]


settings_for = make_settings  # one definition, in appkit


def pop(*path: str) -> Mutation:
    """A mutation removing the member at `path` of a credential JSON (e.g. `pop("response", "signature")`)."""

    def mutate(credential: dict[str, Any]) -> None:
        target = credential
        for part in path[:-1]:
            target = target[part]
        target.pop(path[-1])

    return mutate


def put(*path: str, value: Any) -> Mutation:
    """A mutation setting the member at `path` of a credential JSON to `value`."""

    def mutate(credential: dict[str, Any]) -> None:
        target = credential
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def module_app(
    folder: str, prefix: str = "", *, both_databases: bool = False, **overrides: Any
) -> tuple[Any, Any]:
    """A test module's `<prefix>ctx` and `<prefix>app` fixtures: one database per module (migrating is the
    slow part); each test compares its own before/after state, so tests do not depend on each other.
    With `both_databases`, every test of the module runs on SQLite and on PostgreSQL."""

    def build(tmp_path_factory: pytest.TempPathFactory, database_url: str | None) -> Iterator[Context]:
        database = {"database_url": database_url} if database_url else {}
        context = build_context(settings_for(tmp_path_factory.mktemp(folder), **database, **overrides))
        yield context
        context.db.dispose()

    def new_app(request: pytest.FixtureRequest) -> Any:
        from passgate.web.app import create_app

        context: Context = request.getfixturevalue(f"{prefix}ctx")
        return create_app(context.settings, context)

    if both_databases:  # both fixtures name the database, so each is made once per database

        @pytest.fixture(scope="module", name=f"{prefix}ctx")
        def context_on_both(
            tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
        ) -> Iterator[Context]:
            yield from build(tmp_path_factory, module_database_url)

        @pytest.fixture(scope="module", name=f"{prefix}app")
        def app_on_both(request: pytest.FixtureRequest, module_database_url: str | None) -> Any:
            return new_app(request)

        return context_on_both, app_on_both

    @pytest.fixture(scope="module", name=f"{prefix}ctx")
    def context_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
        yield from build(tmp_path_factory, None)

    @pytest.fixture(scope="module", name=f"{prefix}app")
    def app_fixture(request: pytest.FixtureRequest) -> Any:
        return new_app(request)

    return context_fixture, app_fixture


def build_context(settings: Settings) -> Context:
    context = Context.build(settings)
    context.db.migrate()
    return context


def client_for(ctx: Context, origin: str, app: Any = None) -> httpx.AsyncClient:
    """An HTTP client over ASGI (a fresh cookie jar); `app` defaults to a new app for `ctx`."""
    from passgate.web.app import create_app

    app = app or create_app(ctx.settings, ctx)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=origin, headers={"origin": origin}
    )


# --------------------------------------------------------------------------- what the database holds


def db_state(ctx: Context) -> dict[str, Any]:
    """Everything a failed ceremony must leave alone: accounts, credential records (every field that
    a sign-in updates), sessions, device links and audit events. Challenges are checked separately."""

    def work(connection: Connection) -> dict[str, Any]:
        def rows(table: Any, *columns: str) -> list[tuple[Any, ...]]:
            selected = select(*(table.c[name] for name in columns)).order_by(table.c[columns[0]])
            return [tuple(row) for row in connection.execute(selected)]

        return {
            "users": rows(users, "id", "user_name", "user_handle", "visits", "last_seen_at", "disabled"),
            "credentials": rows(
                credentials,
                "credential_id",
                "user_id",
                "public_key",
                "sign_count",
                "backup_eligible",
                "backup_state",
                "uv_initialized",
                "last_used_at",
                "last_verified_at",
                "flagged_at",
                "flag_reason",
            ),
            "sessions": rows(sessions, "id", "user_id", "auth_time", "credential_id", "user_verified"),
            "device_links": rows(device_links, "id", "user_id"),
            "audit_events": connection.execute(select(func.count()).select_from(audit_events)).scalar_one(),
        }

    return ctx.db.transact(work, write=False)


def credential_row(ctx: Context, credential_id: bytes) -> dict[str, Any]:
    def work(connection: Connection) -> dict[str, Any]:
        row = connection.execute(
            select(credentials).where(credentials.c.credential_id == credential_id)
        ).first()
        assert row is not None, "credential not stored"
        return dict(row._mapping)

    return ctx.db.transact(work, write=False)


def audit_kinds(ctx: Context) -> list[str]:
    def work(connection: Connection) -> list[str]:
        return [row[0] for row in connection.execute(select(audit_events.c.kind).order_by(audit_events.c.id))]

    return ctx.db.transact(work, write=False)


def challenge_stored(ctx: Context, options: dict[str, Any]) -> bool:
    """Whether the challenge of these options is still waiting to be used."""
    challenge = b64url_decode(options["publicKey"]["challenge"])

    def work(connection: Connection) -> bool:
        query = select(challenges.c.challenge).where(challenges.c.challenge == challenge)
        return connection.execute(query).first() is not None

    return ctx.db.transact(work, write=False)


def write_lock_free(ctx: Context) -> bool:
    """Whether another connection can take SQLite's database-wide write lock at this moment."""
    import sqlite3

    other = sqlite3.connect(str(ctx.db.engine.url.database), timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def write_lock_seen(monkeypatch: Any, owner: Any, name: str, ctx: Context) -> list[bool]:
    """Wrap `owner.<name>` (a ceremony's verify) to note, at each call, whether SQLite's write lock is
    free (`write_lock_free`): the list the calls append to."""
    verify = getattr(owner, name)
    seen: list[bool] = []

    def noted(*args: Any, **kwargs: Any) -> Any:
        seen.append(write_lock_free(ctx))
        return verify(*args, **kwargs)

    monkeypatch.setattr(owner, name, noted)
    return seen


def after_verify(monkeypatch: Any, event: Any) -> None:
    """Run `event` right after the next assertion's signature check (`services.login.verify_assertion`,
    which every sign-in and passkey-API assertion calls) and before its write: what another request (in
    another worker or instance) could do meanwhile."""
    from passgate.services import login

    verify = login.verify_assertion

    def verify_then_event(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(login, "verify_assertion", verify)  # once
        try:
            return verify(*args, **kwargs)
        finally:
            event()

    monkeypatch.setattr(login, "verify_assertion", verify_then_event)


def expire_challenge(ctx: Context, options: dict[str, Any]) -> None:
    """Time travel: the challenge of these options expired a second ago."""
    import time

    challenge = b64url_decode(options["publicKey"]["challenge"])
    ctx.db.transact(
        lambda connection: connection.execute(
            update(challenges).where(challenges.c.challenge == challenge).values(expires_at=time.time() - 1)
        )
    )


# --------------------------------------------------------------------------- answers


def assert_refused(response: httpx.Response, code: str, status: int = 400) -> None:
    """A clean 4xx JSON error with this code, no stack trace, no cookie."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body = response.json()
    assert set(body) == {"error", "code"}, body
    assert body["code"] == code, body
    assert "Traceback" not in response.text and "webauthn" not in response.text.lower(), response.text
    assert not any("passgate" in cookie and "Max-Age=0" not in cookie for cookie in set_cookies(response))


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


# --------------------------------------------------------------------------- editing responses


def client_data(credential: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(b64url_decode(credential["response"]["clientDataJSON"]))
    return loaded


def set_client_data_bytes(credential: dict[str, Any], raw: bytes) -> None:
    credential["response"]["clientDataJSON"] = b64url_encode(raw)


def attestation(credential: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = cbor2.loads(b64url_decode(credential["response"]["attestationObject"]))
    return loaded


def set_attestation(credential: dict[str, Any], value: Any) -> None:
    credential["response"]["attestationObject"] = b64url_encode(cbor2.dumps(value))


def edit_attestation(edit: Callable[[dict[str, Any]], Any]) -> Mutation:
    """A mutation that edits the decoded attestation object (returning a replacement, or editing in place)."""

    def mutate(credential: dict[str, Any]) -> None:
        decoded = attestation(credential)
        replaced = edit(decoded)
        set_attestation(credential, decoded if replaced is None else replaced)

    return mutate


def resign(
    credential: dict[str, Any], key: SoftCredential | PrivateKey, *, auth_data: bytes | None = None
) -> None:
    """Replace authenticatorData (optionally) and sign it again over the current clientDataJSON, so that a
    test of an authenticator-data check is not a signature failure in disguise."""
    response = credential["response"]
    data = auth_data if auth_data is not None else b64url_decode(response["authenticatorData"])
    client_hash = hashlib.sha256(b64url_decode(response["clientDataJSON"])).digest()
    private = key.private_key if isinstance(key, SoftCredential) else key
    response["authenticatorData"] = b64url_encode(data)
    response["signature"] = b64url_encode(sign(private, data + client_hash))
