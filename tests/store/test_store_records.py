"""The store modules on SQLite and PostgreSQL: constraints, single use, expiry, joins, migrations."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, func, inspect, select, text

from passgate.store import audit, challenges, credentials, links, sessions, users
from passgate.store.database import Database
from passgate.store.models import BUILTIN_TENANT, tenants
from passgate.store.models import challenges as challenge_table
from passgate.store.records import CredentialRecord, LinkRecord, SessionRecord, UserRecord

OTHER_TENANT = "11111111-1111-1111-1111-111111111111"
TABLES = {"users", "credentials", "challenges", "sessions", "device_links", "tenants", "audit_events"}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    database.transact(_ensure_other_tenant)
    yield database
    database.dispose()


def _ensure_other_tenant(connection: Connection) -> None:
    if connection.execute(select(tenants.c.id).where(tenants.c.id == OTHER_TENANT)).first() is None:
        connection.execute(tenants.insert().values(id=OTHER_TENANT, name="other", created_at=time.time()))


def _name() -> str:
    return f"u-{uuid.uuid4().hex[:12]}"


def _user(db: Database, name: str | None = None, tenant: str = BUILTIN_TENANT) -> UserRecord:
    name = name or _name()
    return db.transact(
        lambda c: users.create(
            c,
            tenant_id=tenant,
            user_name=name,
            user_key=name,  # the store keeps the key it is given (services/names.py computes it)
            display_name="Someone",
            user_handle=secrets.token_bytes(32),
            at=time.time(),
        )
    )


def _credential(user: UserRecord, credential_id: bytes | None = None) -> CredentialRecord:
    return CredentialRecord(
        credential_id=credential_id or secrets.token_bytes(32),
        tenant_id=user.tenant_id,
        user_id=user.id,
        public_key=b"\xa5cose",
        algorithm=-7,
        sign_count=0,
        transports="internal,hybrid",
        aaguid="00000000-0000-0000-0000-000000000000",
        backup_eligible=True,
        backup_state=False,
        uv_initialized=True,
        attestation_format="none",
        rp_id="localhost",
        name="",
        created_at=time.time(),
        last_used_at=None,
        last_verified_at=None,
        flagged_at=None,
        flag_reason=None,
    )


def _session(user: UserRecord, *, expires_in: float = 3600) -> SessionRecord:
    at = time.time()
    return SessionRecord(
        id=secrets.token_urlsafe(24),
        tenant_id=user.tenant_id,
        user_id=user.id,
        credential_id=None,
        created_at=at,
        last_seen_at=at,
        auth_time=at,
        user_verified=True,
        amr="hwk user mfa",
        user_agent="pytest",
        ip="127.0.0.1",
        expires_at=at + expires_in,
    )


def _challenge(db: Database, *, ttl: float = 300, purpose: str = "login") -> bytes:
    value = secrets.token_bytes(32)
    db.transact(
        lambda c: challenges.create(
            c,
            challenge=value,
            purpose=purpose,
            tenant_id=BUILTIN_TENANT,
            expires_at=time.time() + ttl,
            state={"origin": "http://localhost:8000", "allowed": None},
            user_id=None,
            session_id="sid",
        )
    )
    return value


# ---------------------------------------------------------------- users


def test_user_names_are_unique_per_tenant(db: Database) -> None:
    name = _name()
    first = _user(db, name)
    with pytest.raises(users.NameTaken):
        _user(db, name)
    # A taken key inserts nothing and raises no database error: the transaction stays usable.
    assert db.transact(lambda c: users.by_key(c, BUILTIN_TENANT, name)) == first
    other = _user(db, name, tenant=OTHER_TENANT)  # same name in another tenant is fine
    assert other.id != first.id
    assert db.transact(lambda c: users.by_key(c, OTHER_TENANT, name)) == other
    assert db.transact(lambda c: users.key_exists(c, BUILTIN_TENANT, name))
    assert not db.transact(lambda c: users.key_exists(c, BUILTIN_TENANT, name + "x"))


def test_name_taken_inside_a_larger_transaction_keeps_earlier_writes(db: Database) -> None:
    name = _name()
    _user(db, name)
    kept = _name()

    def work(c: Connection) -> None:
        users.create(
            c,
            tenant_id=BUILTIN_TENANT,
            user_name=kept,
            user_key=kept,
            display_name="",
            user_handle=b"h" * 32,
            at=1.0,
        )
        with pytest.raises(users.NameTaken):
            users.create(
                c,
                tenant_id=BUILTIN_TENANT,
                user_name=name,
                user_key=name,
                display_name="",
                user_handle=b"i" * 32,
                at=1.0,
            )

    db.transact(work)
    assert db.transact(lambda c: users.by_key(c, BUILTIN_TENANT, kept)) is not None


def test_user_visits_disable_and_remove_cascade(db: Database) -> None:
    user = _user(db)
    db.transact(lambda c: users.record_visit(c, user.id, 1234.5))
    db.transact(lambda c: users.record_visit(c, user.id, 1240.0))
    found = db.transact(lambda c: users.get(c, user.id))
    assert found is not None and found.visits == 2 and found.last_seen_at == 1240.0
    assert db.transact(lambda c: users.set_disabled(c, user.id, True))
    assert db.transact(lambda c: users.get(c, user.id)).disabled  # type: ignore[union-attr]
    assert not db.transact(lambda c: users.set_disabled(c, "no-such-user", True))

    credential = _credential(user)
    session = _session(user)
    db.transact(lambda c: credentials.create(c, credential))
    db.transact(lambda c: sessions.create(c, session))
    assert db.transact(lambda c: users.remove(c, user.id))
    assert db.transact(lambda c: credentials.get(c, credential.credential_id)) is None
    assert db.transact(lambda c: sessions.get_with_user(c, session.id)) is None


# ---------------------------------------------------------------- credentials


def test_credential_ids_are_unique_across_users_and_tenants(db: Database) -> None:
    alice, bob = _user(db), _user(db, tenant=OTHER_TENANT)
    record = _credential(alice)
    db.transact(lambda c: credentials.create(c, record))
    with pytest.raises(credentials.AlreadyRegistered):
        db.transact(lambda c: credentials.create(c, _credential(bob, record.credential_id)))
    stored = db.transact(lambda c: credentials.get(c, record.credential_id))
    assert stored == record  # every column round-trips, bytes included
    owner = db.transact(lambda c: credentials.get_with_owner(c, record.credential_id))
    assert owner is not None and owner[1] == alice
    assert db.transact(lambda c: credentials.count_for_user(c, bob.id)) == 0


def test_a_known_credential_id_inside_a_larger_transaction_keeps_earlier_writes(db: Database) -> None:
    """On PostgreSQL a failed INSERT aborts the transaction; `INSERT … ON CONFLICT DO NOTHING` does not,
    so the caller's earlier writes commit without a savepoint around the insert."""
    alice = _user(db)
    record = _credential(alice)
    db.transact(lambda c: credentials.create(c, record))
    kept = _credential(alice)

    def work(c: Connection) -> None:
        credentials.create(c, kept)
        with pytest.raises(credentials.AlreadyRegistered):
            credentials.create(c, _credential(alice, record.credential_id))
        users.record_visit(c, alice.id, 1234.5)

    db.transact(work)
    assert db.transact(lambda c: credentials.get(c, kept.credential_id)) == kept
    assert db.transact(lambda c: users.get(c, alice.id)).visits == 1  # type: ignore[union-attr]


def test_a_used_transaction_id_inside_a_larger_transaction_keeps_earlier_writes(db: Database) -> None:
    from passgate.store import tenants as tenant_rows

    alice = _user(db)

    def add(c: Connection, data: str) -> None:
        tenant_rows.add_transaction(
            c, tenant_id=BUILTIN_TENANT, transaction_id="t-1", user_id=alice.id, data=data, at=1.0
        )

    def work(c: Connection) -> None:
        add(c, "first")
        with pytest.raises(tenant_rows.TransactionExists):
            add(c, "second")
        users.record_visit(c, alice.id, 1234.5)

    db.transact(work)
    assert db.transact(lambda c: users.get(c, alice.id)).visits == 1  # type: ignore[union-attr]
    query = text("SELECT data FROM passkey_transactions WHERE transaction_id = 't-1'")
    assert db.transact(lambda c: c.execute(query).scalars().all()) == ["first"]


def test_credential_use_flag_rename_remove(db: Database) -> None:
    user, stranger = _user(db), _user(db)
    record = _credential(user)
    db.transact(lambda c: credentials.create(c, record))
    cid = record.credential_id
    db.transact(
        lambda c: credentials.record_use(c, cid, sign_count=7, backup_state=True, user_verified=True, at=99.0)
    )
    used = db.transact(lambda c: credentials.get(c, cid))
    assert used is not None
    assert (used.sign_count, used.backup_state) == (7, True)
    assert used.last_used_at == used.last_verified_at == 99.0
    db.transact(lambda c: credentials.flag(c, cid, "counter went back", 100.0))
    assert db.transact(lambda c: credentials.get(c, cid)).flag_reason == "counter went back"  # type: ignore[union-attr]
    assert db.transact(lambda c: credentials.clear_flag(c, cid))
    assert db.transact(lambda c: credentials.get(c, cid)).flagged_at is None  # type: ignore[union-attr]

    assert not db.transact(lambda c: credentials.rename(c, cid, stranger.id, "mine now"))
    assert db.transact(lambda c: credentials.rename(c, cid, user.id, "Laptop"))
    assert db.transact(lambda c: credentials.get(c, cid)).name == "Laptop"  # type: ignore[union-attr]
    assert db.transact(lambda c: credentials.ids_for_user(c, user.id)) == [(cid, "internal,hybrid")]
    assert not db.transact(lambda c: credentials.remove(c, cid, stranger.id))
    assert db.transact(lambda c: credentials.remove(c, cid, user.id))
    assert db.transact(lambda c: credentials.get(c, cid)) is None


# ---------------------------------------------------------------- challenges


def test_challenge_is_consumed_once(db: Database) -> None:
    value = _challenge(db)
    first = db.transact(lambda c: challenges.consume(c, value, time.time()))
    assert first is not None
    assert first.purpose == "login" and first.session_id == "sid"
    assert first.state == {"origin": "http://localhost:8000", "allowed": None}
    assert db.transact(lambda c: challenges.consume(c, value, time.time())) is None


def test_expired_challenge_is_refused_and_removed(db: Database) -> None:
    value = _challenge(db, ttl=-1)
    assert db.transact(lambda c: challenges.consume(c, value, time.time())) is None
    count = select(func.count()).select_from(challenge_table).where(challenge_table.c.challenge == value)
    assert db.transact(lambda c: c.execute(count).scalar_one()) == 0


def test_consume_rolled_back_leaves_the_challenge(db: Database) -> None:
    value = _challenge(db)

    def work(c: Connection) -> None:
        assert challenges.consume(c, value, time.time()) is not None
        raise RuntimeError("the finishing transaction failed")

    with pytest.raises(RuntimeError):
        db.transact(work)
    assert db.transact(lambda c: challenges.consume(c, value, time.time())) is not None


def test_sweep_removes_only_expired_challenges(db: Database) -> None:
    live, dead = _challenge(db), _challenge(db, ttl=-5)
    assert db.transact(lambda c: challenges.sweep(c, time.time())) >= 1
    assert db.transact(lambda c: challenges.consume(c, dead, 0.0)) is None
    assert db.transact(lambda c: challenges.consume(c, live, time.time())) is not None


def test_two_threads_consuming_one_challenge_exactly_one_wins(db: Database) -> None:
    """DELETE … RETURNING inside concurrent transactions: one finish gets the row, the other nothing."""
    rounds = 12
    values = [_challenge(db) for _ in range(rounds)]
    barrier = threading.Barrier(2, timeout=30)
    results: dict[int, list[bool]] = {index: [] for index in range(rounds)}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def racer() -> None:
        try:
            for index, value in enumerate(values):
                barrier.wait()

                def work(c: Connection, value: bytes = value) -> bool:
                    got = challenges.consume(c, value, time.time()) is not None
                    time.sleep(0.005)  # hold the transaction open so the other one must wait on it
                    return got

                won = db.transact(work)
                with lock:
                    results[index].append(won)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert all(sorted(outcomes) == [False, True] for outcomes in results.values()), results


# ---------------------------------------------------------------- sessions


def test_session_with_user_in_one_statement(db: Database) -> None:
    user = _user(db)
    record = _session(user)
    db.transact(lambda c: sessions.create(c, record))
    found = db.transact(lambda c: sessions.get_with_user(c, record.id))
    assert found == (record, user)
    assert db.transact(lambda c: sessions.get_with_user(c, "nope")) is None

    db.transact(lambda c: sessions.touch(c, record.id, record.last_seen_at + 50))
    db.transact(lambda c: sessions.refresh_auth(c, record.id, {"auth_time": 42.0, "amr": "swk"}))
    session, _ = db.transact(lambda c: sessions.get_with_user(c, record.id))  # type: ignore[misc]
    assert (session.auth_time, session.amr, session.last_seen_at) == (42.0, "swk", record.last_seen_at + 50)


def test_sessions_remove_one_all_and_expired(db: Database) -> None:
    user, other = _user(db), _user(db)
    one, two, theirs = _session(user), _session(user), _session(other)
    stale = _session(user, expires_in=-1)

    def create_all(c: Connection) -> None:
        for record in (one, two, theirs, stale):
            sessions.create(c, record)

    db.transact(create_all)
    assert {s.id for s in db.transact(lambda c: sessions.for_user(c, user.id))} == {one.id, two.id, stale.id}
    assert not db.transact(lambda c: sessions.remove(c, theirs.id, user.id))  # not theirs to end
    now = time.time()
    assert db.transact(lambda c: sessions.remove_expired(c, now, now - 10_000)) >= 1
    assert db.transact(lambda c: sessions.get_with_user(c, stale.id)) is None
    assert db.transact(lambda c: sessions.remove(c, one.id, user.id))
    assert db.transact(lambda c: sessions.remove_all(c, user.id)) == [two.id]
    assert db.transact(lambda c: sessions.get_with_user(c, theirs.id)) is not None


# ---------------------------------------------------------------- device links


def _link(user: UserRecord, *, expires_in: float = 3600) -> LinkRecord:
    at = time.time()
    return LinkRecord(
        id=str(uuid.uuid4()),
        secret_hash=secrets.token_bytes(32),
        tenant_id=user.tenant_id,
        user_id=user.id,
        created_by="user",
        created_at=at,
        expires_at=at + expires_in,
    )


def test_device_link_is_found_then_consumed_once(db: Database) -> None:
    user = _user(db)
    record = _link(user)
    db.transact(lambda c: links.create(c, record))
    assert db.transact(lambda c: links.find(c, record.secret_hash, time.time())) == record
    assert db.transact(lambda c: links.consume(c, record.id, time.time())) == record
    assert db.transact(lambda c: links.consume(c, record.id, time.time())) is None
    assert db.transact(lambda c: links.find(c, record.secret_hash, time.time())) is None


def test_expired_device_link_is_neither_found_nor_consumed(db: Database) -> None:
    user = _user(db)
    record = _link(user, expires_in=-1)
    db.transact(lambda c: links.create(c, record))
    assert db.transact(lambda c: links.find(c, record.secret_hash, time.time())) is None
    assert db.transact(lambda c: links.consume(c, record.id, time.time())) is None


def test_audit_events_newest_first(db: Database) -> None:
    user = _user(db)
    db.transact(lambda c: audit.record(c, tenant_id=BUILTIN_TENANT, user_id=user.id, kind="a", at=1.0, x=1))
    db.transact(
        lambda c: audit.record(c, tenant_id=BUILTIN_TENANT, user_id=user.id, kind="b", at=2.0, y=b"z")
    )
    assert db.transact(lambda c: audit.for_user(c, user.id)) == [
        {"at": 2.0, "kind": "b", "y": "b'z'"},
        {"at": 1.0, "kind": "a", "x": 1},
    ]


# ---------------------------------------------------------------- migrations


def _head_revision() -> str:
    from importlib.resources import files

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(files("passgate.store") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_migrations_are_idempotent(db: Database) -> None:
    user = _user(db)
    db.migrate()
    db.migrate()
    version = db.transact(lambda c: c.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    assert version == _head_revision()
    tables = set(inspect(db.engine).get_table_names())
    assert tables >= TABLES
    assert db.transact(lambda c: users.get(c, user.id)) == user  # data survives
    builtin = select(tenants.c.id).where(tenants.c.id == BUILTIN_TENANT)
    assert db.transact(lambda c: c.execute(builtin).first()) is not None  # seeded by the migration


@pytest.fixture
def empty_database_url(database_url: str) -> Iterator[str]:
    """A database with no schema yet (SQLite: the per-test file; PostgreSQL: a new database)."""
    if not database_url.startswith("postgresql"):
        yield database_url
        return
    import psycopg

    name = f"passgate_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"{database_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrations_from_several_processes_at_once(empty_database_url: str) -> None:
    """Workers starting together all migrate: the lock (PostgreSQL) / busy wait (SQLite) serialises them."""
    databases = [Database(empty_database_url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(database: Database) -> None:
        try:
            database.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(database,)) for database in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert not errors, errors
        tables = set(inspect(databases[0].engine).get_table_names())
        assert tables >= TABLES
    finally:
        for database in databases:
            database.dispose()
