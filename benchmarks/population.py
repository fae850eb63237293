"""A population of accounts for benchmarks at scale, bulk-loaded into PostgreSQL with `COPY`.

Every account is what a sign-up through Passgate writes — a `users` row, one ES256 passkey in
`credentials`, its `credential_added` audit event and the session the sign-up opened — built from the
rows of an account that Passgate itself registered over HTTP (the *reference*): each loaded row is the
reference's row with its identity replaced (ids, user handle, name and its canonical key from
`passgate.services.names`, credential id, public key, session id) and its times moved to the moment of
loading. A column Passgate adds later is copied from the reference, so the rows cannot drift from what
Passgate writes; the column lists come from the table in the database.

Account `index` is derived from a per-run seed alone (SHAKE-256 of seed and index): any account of the
population can be signed in with by rebuilding its private key (`authenticator`), not only a sample. Each
account has its own P-256 key pair; nothing is shared between accounts but the reference's constant
columns (tenant, AAGUID, transports, flags, RP ID).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import common  # noqa: F401 - puts tests/ on sys.path, for softkey
import psycopg
from cryptography.hazmat.primitives.asymmetric import ec

from softkey import SoftAuthenticator, SoftCredential, b64url_encode, cose_public_key

TABLES = ("users", "credentials", "audit_events", "sessions")  # in foreign-key order
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CHUNK = 10_000  # accounts per COPY batch (and per transaction)
CHECKPOINT_FROM = 100_000  # accounts loaded

Row = dict[str, Any]


@dataclass(frozen=True)
class Reference:
    """The rows Passgate wrote for one account it registered: a row per table in TABLES."""

    rows: dict[str, Row]
    float_columns: dict[str, frozenset[str]]  # per table: the time columns (moved to the load time)

    @property
    def anchor(self) -> float:
        return float(self.rows["users"]["created_at"])

    @classmethod
    def read(cls, url: str, user_name: str) -> Reference:
        """The rows of the account `user_name`, as Passgate wrote them at its sign-up."""
        with psycopg.connect(url) as connection:
            user = _one(connection, "SELECT * FROM users WHERE user_name = %s", (user_name,))
            queries = {
                "users": ("SELECT * FROM users WHERE id = %s", user["id"]),
                "credentials": ("SELECT * FROM credentials WHERE user_id = %s", user["id"]),
                "audit_events": (
                    "SELECT * FROM audit_events WHERE user_id = %s AND kind = 'credential_added'",
                    user["id"],
                ),
                "sessions": ("SELECT * FROM sessions WHERE user_id = %s", user["id"]),
            }
            rows = {table: _one(connection, sql, (value,)) for table, (sql, value) in queries.items()}
            rows["audit_events"].pop("id")  # a serial: the database numbers loaded events
            floats = {table: _float_columns(connection, table) for table in TABLES}
        return cls(rows=rows, float_columns=floats)


def _one(connection: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> Row:
    with connection.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        found = cursor.execute(sql, params).fetchall()
    if len(found) != 1:
        raise RuntimeError(f"expected one row for {sql!r}, found {len(found)}")
    return dict(found[0])


def _float_columns(connection: psycopg.Connection[Any], table: str) -> frozenset[str]:
    rows = connection.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND data_type IN ('double precision', 'real')",
        (table,),
    ).fetchall()
    return frozenset(row[0] for row in rows)


@dataclass(frozen=True)
class Account:
    """What the benchmark needs to act as account `index`."""

    index: int
    user_id: str
    user_name: str
    user_handle: bytes
    credential_id: bytes
    session_id: str
    private_scalar: int


@dataclass(frozen=True)
class Population:
    """Accounts 0, 1, 2, … derived from `seed`, shaped like `reference`."""

    seed: bytes
    reference: Reference

    @classmethod
    def new(cls, reference: Reference) -> Population:
        return cls(seed=os.urandom(32), reference=reference)

    def account(self, index: int) -> Account:
        credential_length = len(self.reference.rows["credentials"]["credential_id"])
        handle_length = len(self.reference.rows["users"]["user_handle"])
        lengths = (16, handle_length, credential_length, 24, 40)
        stream = hashlib.shake_256(self.seed + index.to_bytes(8, "big")).digest(sum(lengths))
        parts, at = [], 0
        for length in lengths:
            parts.append(stream[at : at + length])
            at += length
        user_id, handle, credential_id, session, scalar = parts
        return Account(
            index=index,
            user_id=str(uuid.UUID(bytes=user_id, version=4)),
            user_name=f"user-{index}",
            user_handle=handle,
            credential_id=credential_id,
            session_id=b64url_encode(session),  # like secrets.token_urlsafe(24)
            private_scalar=int.from_bytes(scalar, "big") % (P256_ORDER - 1) + 1,
        )

    def private_key(self, account: Account) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(account.private_scalar, ec.SECP256R1())

    def authenticator(self, index: int) -> SoftAuthenticator:
        """A software authenticator holding account `index`'s passkey, its counter where it was loaded."""
        account = self.account(index)
        stored = self.reference.rows["credentials"]
        authenticator = SoftAuthenticator("ES256", backup_eligible=bool(stored["backup_eligible"]))
        authenticator.credentials[account.credential_id] = SoftCredential(
            credential_id=account.credential_id,
            private_key=self.private_key(account),
            alg="ES256",
            rp_id=str(stored["rp_id"]),
            user_handle=account.user_handle,
            sign_count=int(stored["sign_count"]),
            backup_eligible=bool(stored["backup_eligible"]),
            backup_state=bool(stored["backup_state"]),
        )
        return authenticator

    def rows(self, index: int, at: float) -> dict[str, Row]:
        """The four rows of account `index` created at `at`, by table, in the reference's column order."""
        from passgate.services.names import stored_key

        account = self.account(index)
        key = self.private_key(account)
        user_key = stored_key(account.user_name)  # = user_name(…, new=True).key for a name sign-up accepts
        changes: dict[str, Row] = {
            "users": {
                "id": account.user_id,
                "user_name": account.user_name,
                "user_key": user_key,
                "display_name": account.user_name,
                "user_handle": account.user_handle,
            },
            "credentials": {
                "credential_id": account.credential_id,
                "user_id": account.user_id,
                "public_key": cose_public_key(key),
            },
            "audit_events": {"user_id": account.user_id, "detail": self._audit_detail(account)},
            "sessions": {
                "id": account.session_id,
                "user_id": account.user_id,
                "credential_id": account.credential_id,
            },
        }
        shift = at - self.reference.anchor
        out = {}
        for table in TABLES:
            row = dict(self.reference.rows[table])
            for column in self.reference.float_columns[table]:
                if row.get(column) is not None:
                    row[column] = float(row[column]) + shift
            unknown = set(changes[table]) - set(row)
            if unknown:
                raise RuntimeError(f"{table} has no column {sorted(unknown)}: update population.py")
            row.update(changes[table])
            out[table] = row
        return out

    def _audit_detail(self, account: Account) -> str:
        detail = json.loads(self.reference.rows["audit_events"]["detail"])
        detail["credential_id"] = b64url_encode(account.credential_id)
        return json.dumps(detail)  # as store/audit.py writes it

    def chunk(self, bounds: tuple[int, int]) -> dict[str, list[tuple[Any, ...]]]:
        """The rows of accounts [start, stop), table by table: signed up a millisecond apart, the last one
        now."""
        from passgate.services.names import user_name

        now = time.time()
        tables: dict[str, list[tuple[Any, ...]]] = {table: [] for table in TABLES}
        first = self.account(bounds[0]).user_name
        if self.rows(bounds[0], now)["users"]["user_key"] != user_name(first, new=True).key:
            raise RuntimeError(f"sign-up would store another key for {first!r}")
        for index in range(*bounds):
            for table, row in self.rows(index, now - (bounds[1] - 1 - index) / 1000).items():
                tables[table].append(tuple(row.values()))
        return tables


@dataclass
class Loaded:
    accounts: int
    seconds: float
    vacuum_seconds: float
    spent: dict[str, float]  # seconds waiting for rows, and in each table's COPY

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.spent.items())
        return (
            f"loaded {self.accounts:,} accounts (user, passkey, audit event, session each) with COPY in "
            f"{self.seconds:.1f} s ({self.accounts / self.seconds:,.0f}/s: {parts}), then VACUUM ANALYZE "
            f"(and CHECKPOINT) {self.vacuum_seconds:.1f} s"
        )


def load(url: str, population: Population, start: int, stop: int, *, jobs: int = 2) -> Loaded:
    """COPY accounts [start, stop) into the migrated schema (its indexes and foreign keys in place), then
    VACUUM ANALYZE (and CHECKPOINT after a large load) so that measurements start from a settled
    database.

    `jobs` processes each build the rows of a chunk of CHUNK accounts (key derivation and the name's
    key cost ~70 µs an account) and COPY them in a transaction of their own over their own connection."""
    started = time.perf_counter()
    bounds = [(low, min(low + CHUNK, stop)) for low in range(start, stop, CHUNK)]
    spent = dict.fromkeys(("rows", *TABLES), 0.0)
    if jobs <= 1 or len(bounds) <= 1:
        _open(url, population)
        done: Iterator[dict[str, float]] = map(_copy_chunk, bounds)
        for times in done:
            for name, seconds in times.items():
                spent[name] += seconds
    else:
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs, initializer=_open, initargs=(url, population)) as pool:
            for times in pool.imap_unordered(_copy_chunk, bounds):
                for name, seconds in times.items():
                    spent[name] += seconds
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"VACUUM (ANALYZE) {', '.join(TABLES)}")
        if stop - start >= CHECKPOINT_FROM:  # write the load out now, not during the measurement
            connection.execute("CHECKPOINT")
    return Loaded(stop - start, loaded, time.perf_counter() - started, spent)


_worker: tuple[psycopg.Connection[Any], Population] | None = None  # per loading process


def _open(url: str, population: Population) -> None:
    global _worker
    connection = psycopg.connect(url)
    connection.execute("SET synchronous_commit = off")  # durability of a scratch load does not matter
    connection.commit()
    _worker = (connection, population)


def _copy_chunk(bounds: tuple[int, int]) -> dict[str, float]:
    """Build and COPY the rows of accounts [start, stop); seconds spent building and per table."""
    assert _worker is not None
    connection, population = _worker
    mark = time.perf_counter()
    tables = population.chunk(bounds)
    spent = {"rows": time.perf_counter() - mark}
    columns = {table: ", ".join(population.reference.rows[table]) for table in TABLES}
    with connection.cursor() as cursor:
        for table in TABLES:
            mark = time.perf_counter()
            with cursor.copy(f"COPY {table} ({columns[table]}) FROM STDIN") as copy:
                for row in tables[table]:
                    copy.write_row(row)
            spent[table] = time.perf_counter() - mark
    connection.commit()
    return spent
