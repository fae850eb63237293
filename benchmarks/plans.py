"""Query plans of the statements Passgate runs, on a loaded PostgreSQL database, and its index sizes.

The statements are not copied here: each step calls the store function a request path calls
(`passgate.store.*`, their prebuilt statements compiled by SQLAlchemy for the postgresql dialect) on a
real account of the population, and records the SQL and parameters SQLAlchemy sends. Each recorded
statement then runs again under `EXPLAIN (ANALYZE, BUFFERS)`, in one transaction that is rolled back at
the end, so the plans are those of the real SQL with real values, and the database is left unchanged.

A *hot* statement runs on sign-in, sign-up, `/auth/me` or sign-out; a *periodic* one at most once a
minute per process (the sweeps) or once per 15 minutes (the decoy summary). A sequential scan of a
big table in a hot statement is a failure; in a periodic one, a warning.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from population import Population
from sqlalchemy import Connection, event

from passgate.store.prepared import Prepared, _bind

BIG_TABLE_ROWS = 10_000  # a table this large must be reached through an index on a hot path
_SCAN = re.compile(
    r"(?P<kind>Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan|Bitmap Heap Scan)"
    r"(?: Backward)?(?: using (?P<index>\S+))? on (?P<table>\S+)"
)


@dataclass
class Statement:
    step: str
    hot: bool
    sql: str
    parameters: Any


@dataclass
class Plan:
    statement: Statement
    lines: list[str]
    big_seq_scans: list[str] = field(default_factory=list)

    @property
    def access(self) -> str:
        """The scans in the plan, e.g. `Index Scan using pk_credentials on credentials`, or what it writes."""
        scans = [match.group(0) for line in self.lines if (match := _SCAN.search(line))]
        if scans:
            return "; ".join(dict.fromkeys(scans))
        first = self.lines[0].strip() if self.lines else ""
        return first.split("  (")[0]

    @property
    def milliseconds(self) -> float:
        for line in self.lines:
            if line.strip().startswith("Execution Time:"):
                return float(line.split(":")[1].split()[0])
        return float("nan")

    @property
    def buffers(self) -> str:
        """The top node's shared buffers (hit/read)."""
        for line in self.lines:
            if "Buffers: shared" in line:
                return line.split("Buffers: shared", 1)[1].strip()
        return ""


Step = tuple[str, bool, bool, Callable[[Connection], object]]  # name, hot, keep its writes, the call


def steps(population: Population, index: int, fresh: int) -> list[Step]:
    """The store calls of each request path, for loaded account `index` and a new account `fresh`
    (not loaded) that signs up."""
    from passgate.store import (
        account_shapes,
        audit,
        challenges,
        credentials,
        links,
        revocations,
        sessions,
        users,
    )
    from passgate.store import oidc as oidc_rows
    from passgate.store.records import CredentialRecord, SessionRecord

    at = time.time()
    old = population.account(index)
    loaded, signup = population.rows(index, at), population.rows(fresh, at)
    tenant = str(loaded["users"]["tenant_id"])
    key = str(loaded["users"]["user_key"])
    register, login = os.urandom(32), os.urandom(32)
    session = SessionRecord(**{**_pick(signup["sessions"], SessionRecord), "user_id": old.user_id})
    new_user = signup["users"]
    made: dict[str, str] = {}  # the id users.create gave the signing-up user (its insert is replayed as is)

    def sign_up(c: Connection) -> None:
        made["id"] = users.create(
            c,
            tenant_id=tenant,
            user_name=new_user["user_name"],
            user_key=new_user["user_key"],
            display_name=new_user["display_name"],
            user_handle=new_user["user_handle"],
            at=at,
        ).id

    def new_credential() -> CredentialRecord:
        return CredentialRecord(**_pick({**signup["credentials"], "user_id": made["id"]}, CredentialRecord))

    def challenge(value: bytes, purpose: str) -> Callable[[Connection], object]:
        return lambda c: challenges.create(
            c, challenge=value, purpose=purpose, tenant_id=tenant, expires_at=at + 300, state={"a": 1}
        )

    return [
        (
            "sign-up begin: is the name taken",
            True,
            False,
            lambda c: users.key_exists(c, tenant, new_user["user_key"]),
        ),
        ("sign-up begin: challenge insert", True, True, challenge(register, "register")),
        ("sign-up finish: challenge consume", True, True, lambda c: challenges.consume(c, register, at)),
        ("sign-up finish: user insert", True, True, sign_up),
        (
            "adding a passkey: passkeys of the user (name)",
            True,
            False,
            lambda c: credentials.for_user(c, made["id"]),
        ),
        ("sign-up finish: credential insert", True, False, lambda c: credentials.create(c, new_credential())),
        (
            "sign-up finish: audit insert",
            True,
            False,
            lambda c: audit.record(c, tenant_id=tenant, user_id=made["id"], kind="credential_added", at=at),
        ),
        ("sign-in begin (named): user by (tenant, key)", True, False, lambda c: users.by_key(c, tenant, key)),
        (
            "sign-in begin (named): credential ids of the user",
            True,
            False,
            lambda c: credentials.ids_for_user(c, old.user_id),
        ),
        ("sign-in begin: challenge insert", True, True, challenge(login, "login")),
        ("sign-in finish: challenge consume", True, True, lambda c: challenges.consume(c, login, at)),
        (
            "sign-in finish: credential ⋈ user by credential id",
            True,
            False,
            lambda c: credentials.get_with_owner(c, old.credential_id),
        ),
        (
            "sign-in finish: credential update",
            True,
            False,
            lambda c: credentials.record_use(
                c, old.credential_id, sign_count=7, backup_state=False, user_verified=True, at=at
            ),
        ),
        ("sign-in finish: session insert", True, True, lambda c: sessions.create(c, session)),
        ("sign-in finish: user visits update", True, False, lambda c: users.record_visit(c, old.user_id, at)),
        ("/auth/me: session ⋈ user by id", True, False, lambda c: sessions.get_with_user(c, old.session_id)),
        ("/auth/me: session last-seen update", True, False, lambda c: sessions.touch(c, old.session_id, at)),
        ("sign-out: session delete", True, True, lambda c: sessions.remove(c, session.id, old.user_id)),
        (
            "sign-out: revocation log insert",
            True,
            False,
            lambda c: revocations.record(c, old.user_id, [session.id], at),
        ),
        (
            "sign-out: audit insert",
            True,
            False,
            lambda c: audit.record(
                c, tenant_id=tenant, user_id=old.user_id, kind="session_ended", at=at, session_id=session.id
            ),
        ),
        (
            "every process: revocation log, newest id then newer entries",
            True,
            False,
            lambda c: revocations.since(c, revocations.latest(c) - 1),
        ),
        ("sweep: expired challenges", False, False, lambda c: challenges.sweep(c, at)),
        ("sweep: expired sessions", False, False, lambda c: sessions.remove_expired(c, at, at - 14 * 86400)),
        ("sweep: expired device links", False, False, lambda c: links.sweep(c, at)),
        ("sweep: old revocation log", False, False, lambda c: revocations.sweep(c, at - 3600)),
        ("sweep: expired OpenID Connect codes and grants", False, False, lambda c: oidc_rows.sweep(c, at)),
        (
            "decoy summary (named sign-in of an unknown name)",
            False,
            False,
            lambda c: account_shapes.recent(c, tenant, max_rows=5000),
        ),
    ]


def _pick(row: dict[str, Any], record: type) -> dict[str, Any]:
    return {name: row[name] for name in record.__slots__}


def explain(url: str, population: Population, index: int, fresh: int) -> list[Plan]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement of every step, in one rolled-back transaction."""
    from passgate.store.database import Database

    database = Database(url.replace("postgresql://", "postgresql+psycopg://", 1))
    plans: list[Plan] = []
    try:
        with database.engine.connect() as connection:
            big = _big_tables(connection)  # begins the transaction every step runs in
            for name, hot, keep, call in steps(population, index, fresh):
                for statement in _recorded(connection, name, hot, call):
                    plans.append(_explain(connection, statement, keep, big))
            connection.rollback()
    finally:
        database.dispose()
    return plans


def _recorded(
    connection: Connection, name: str, hot: bool, call: Callable[[Connection], object]
) -> list[Statement]:
    """The statements `call` sends (run in a savepoint that is rolled back)."""
    recorded: list[Statement] = []

    def record(
        _conn: object, _cursor: object, sql: str, parameters: Any, _context: object, many: bool
    ) -> None:
        if not sql.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            recorded.append(Statement(name, hot, sql, parameters[0] if many else parameters))

    def record_prepared(self: Prepared, connection: Connection, params: Any = None) -> Any:
        form = self._form(connection.dialect)  # the hot statements bypass SQLAlchemy's events
        recorded.append(Statement(name, hot, form.sql, _bind(form, params or {})))
        return run_prepared(self, connection, params)

    run_prepared = Prepared.execute
    savepoint = connection.begin_nested()
    event.listen(connection, "before_cursor_execute", record)
    Prepared.execute = record_prepared  # type: ignore[method-assign]
    try:
        call(connection)
    finally:
        Prepared.execute = run_prepared  # type: ignore[method-assign]
        event.remove(connection, "before_cursor_execute", record)
        savepoint.rollback()
    if not recorded:
        raise RuntimeError(f"{name}: the store call sent no statement")
    return recorded


def _explain(connection: Connection, statement: Statement, keep: bool, big: set[str]) -> Plan:
    savepoint = connection.begin_nested()
    rows = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement.sql}", statement.parameters)
    lines = [str(row[0]) for row in rows]
    if keep:
        savepoint.commit()
    else:
        savepoint.rollback()
    plan = Plan(statement, lines)
    for line in lines:
        match = _SCAN.search(line)
        if match and match.group("kind") == "Seq Scan" and match.group("table") in big:
            plan.big_seq_scans.append(match.group("table"))
    return plan


def _big_tables(connection: Connection) -> set[str]:
    rows = connection.exec_driver_sql(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
        "AND reltuples >= %(rows)s",
        {"rows": BIG_TABLE_ROWS},
    )
    return {str(row[0]) for row in rows}


def report(plans: list[Plan], *, verbose: bool = True) -> bool:
    """Print every plan and a summary; False when a hot statement scans a big table sequentially."""
    ok = True
    if verbose:
        for plan in plans:
            print(f"\n-- {plan.statement.step}{'' if plan.statement.hot else ' (periodic)'}")
            print("   " + " ".join(plan.statement.sql.split()))
            for line in plan.lines:
                print("   | " + line)
    print()
    print(f"{'statement':<55} {'ms':>7}  {'buffers':<18} access path")
    for plan in plans:
        verdict = ""
        if plan.big_seq_scans:
            verdict = "  FAIL: Seq Scan" if plan.statement.hot else "  WARN: Seq Scan (periodic)"
            ok = ok and not plan.statement.hot
        label = plan.statement.step + ("" if plan.statement.hot else " *")
        print(f"{label[:55]:<55} {plan.milliseconds:>7.3f}  {plan.buffers[:18]:<18} {plan.access}{verdict}")
    print("(* periodic: once a minute per process, or once per 15 minutes for the decoy summary)")
    return ok


@dataclass
class Size:
    table: str
    rows: int
    heap_bytes: int
    indexes: list[tuple[str, int]]


def sizes(url: str, tables: tuple[str, ...]) -> Iterator[Size]:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as connection:
        for table in tables:
            count = sql.SQL("SELECT count(*), pg_table_size({name}::regclass) FROM {table}").format(
                name=sql.Literal(table), table=sql.Identifier(table)
            )
            rows, heap = connection.execute(count).fetchone() or (0, 0)
            indexes = connection.execute(
                "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
                "WHERE indrelid = %s::regclass ORDER BY 1",
                (table,),
            ).fetchall()
            yield Size(table, int(rows), int(heap), [(str(name), int(size)) for name, size in indexes])


def print_sizes(found: list[Size]) -> None:
    print()
    print(f"{'table':<14} {'rows':>10} {'table MB':>9}  {'index':<28} {'index MB':>9} {'B/row':>6}")
    for size in found:
        first = True
        for name, index_bytes in size.indexes or [("", 0)]:
            head = f"{size.table:<14} {size.rows:>10,} {size.heap_bytes / 2**20:>9.1f}" if first else " " * 35
            per_row = index_bytes / size.rows if size.rows > 0 else float("nan")
            print(f"{head}  {name:<28} {index_bytes / 2**20:>9.1f} {per_row:>6.0f}")
            first = False
        total = sum(index_bytes for _, index_bytes in size.indexes)
        print(f"{'':<35}  {'all indexes':<28} {total / 2**20:>9.1f}")


def print_updates(labelled_urls: list[tuple[str, str]], tables: tuple[str, ...]) -> None:
    """Per database, how many row updates of each table were HOT (wrote no index entry: PostgreSQL found
    room on the row's own page). An update that is not HOT adds an entry to every index of its table."""
    import psycopg

    print()
    print(f"{'database':<22} {'table':<12} {'updates':>9} {'HOT':>6}")
    for label, url in labelled_urls:
        with psycopg.connect(url) as connection:
            rows = connection.execute(
                "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = ANY(%s) "
                "ORDER BY relname",
                (list(tables),),
            ).fetchall()
        for table, updated, hot in rows:
            share = f"{hot / updated:.0%}" if updated else "-"
            print(f"{label:<22} {table:<12} {updated:>9,} {share:>6}")
