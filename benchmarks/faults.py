"""Fault scenarios under load, against real `passgate serve` processes; each prints its figures.

    .venv/bin/python benchmarks/faults.py postgres-restart   # a private PostgreSQL stopped and started
    .venv/bin/python benchmarks/faults.py kill-9             # SQLite: kill -9 mid-load, then a restart
    .venv/bin/python benchmarks/faults.py sqlite-lock        # another process holds SQLite's write lock
    .venv/bin/python benchmarks/faults.py all --seconds 10 --concurrency 64

- **postgres-restart**: a private cluster (`initdb` + `pg_ctl` on a free port, see tests/pgcluster.py)
  serves two Passgate instances under the mixed load of `benchmarks/load.py` (sign-ins, sign-ups,
  `/auth/me`, forward-auth, and requests that must be refused). It is stopped (`pg_ctl stop -m fast`)
  and started again mid-load. Measured: any 2xx for a request that must be refused, any answer other
  than the expected one or a clean `503 database_*`, the slowest answer against the configured
  `PASSGATE_DATABASE_TIMEOUT`, the time from the database accepting connections again to the last 503,
  and afterwards whether every acknowledged session still works and every account can still sign in.
- **kill-9**: SQLite, sign-up-heavy load; the server's process group gets SIGKILL mid-load; a new
  server opens the same data directory. Measured: `PRAGMA integrity_check`, and whether every sign-up
  that was answered 200 can sign in.
- **sqlite-lock**: another process holds `BEGIN IMMEDIATE` on the database. Measured: static files and
  cached forward-auth answers while a write waits (they must not wait for it), the write's answer
  (`503 database_busy` after the bounded wait), a write whose wait ends with the lock released in time
  (200), and writes after the release.

The test suite runs each scenario at a small scale (tests/test_faults.py) and asserts on the result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common import COOKIE, Connection, User, machine, new_event_loop, percentile, register
from load import PROXY_HEADERS, Load, Tally, report, run_instances, signed_out_cookie

from pgcluster import PrivatePostgres, private_postgres
from servers import RunningServer

FAULT_MIX = "signin=2,signup=1,me=4,forward=6,me-refused=1,forward-refused=1"
KILL_MIX = "signup=4,signin=1,me=1,forward=1"


# --------------------------------------------------------------------------- checks after the fault


async def dead_sessions(servers: list[RunningServer], cookies: list[str], parallel: int = 8) -> list[str]:
    """Acknowledged session cookies that `/auth/me` no longer accepts."""
    dead: list[str] = []

    async def worker(index: int) -> None:
        server = servers[index % len(servers)]
        connection = Connection("127.0.0.1", server.port, origin=server.url)
        try:
            for cookie in cookies[index::parallel]:
                response = await connection.request(
                    "GET", "/auth/me", headers={"Cookie": f"{COOKIE}={cookie}"}
                )
                if response.status != 200:
                    dead.append(cookie)
        finally:
            await connection.close()

    await asyncio.gather(*(worker(index) for index in range(parallel)))
    return dead


async def cannot_sign_in(server: RunningServer, users: list[User], parallel: int = 8) -> list[str]:
    """Names of accounts whose passkey no longer signs in (a lost credential or account)."""
    lost: list[str] = []

    async def worker(chunk: list[User]) -> None:
        connection = Connection("127.0.0.1", server.port, origin=server.url)
        try:
            for user in chunk:
                begin = await connection.post_json("/auth/login/begin", {"user_name": user.name})
                assertion = user.authenticator.get(begin.json(), origin=server.url)
                finish = await connection.post_json("/auth/login/finish", assertion)
                if finish.status != 200:
                    lost.append(user.name)
        finally:
            await connection.close()

    await asyncio.gather(*(worker(users[index::parallel]) for index in range(parallel)))
    return lost


# --------------------------------------------------------------------------- PostgreSQL restart


@dataclass
class RestartResult:
    tally: Tally
    timeout: float
    outage: float = 0.0  # seconds between `pg_ctl stop` returning and `pg_ctl start` returning
    recovered_after: float = 0.0  # from `pg_ctl start` returning to the end of the last refused request
    first_success: float = 0.0  # from `pg_ctl start` returning to the first database read or write answered
    unavailable: int = 0  # clean 503 database_* answers
    dead_sessions: list[str] = field(default_factory=list)
    lost_accounts: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Everything that breaks the promise; empty when the scenario passed."""
        problems = [
            f"{o.operation}: {o.status} {o.code} after {o.seconds:.2f} s"
            for o in self.tally.errors(tolerate_unavailable=True)
        ]
        problems += [f"{o.operation}: {o.status} for a request that must be refused" for o in self.allowed]
        problems += [f"{o.operation} took {o.seconds:.2f} s" for o in self.hung]
        if max(self.recovered_after, self.first_success) > 5.0:
            problems.append(
                f"service back only {max(self.recovered_after, self.first_success):.1f} s after the database"
            )
        problems += [f"session lost: {cookie[:12]}…" for cookie in self.dead_sessions]
        problems += [f"account cannot sign in: {name}" for name in self.lost_accounts]
        return problems

    @property
    def allowed(self) -> list[object]:
        return list(self.tally.refused_but_allowed())

    @property
    def hung(self) -> list[object]:
        margin = 2.0  # scheduling on a shared 2-core machine
        return [o for o in self.tally.outcomes if o.seconds > self.timeout + margin]

    def describe(self) -> str:
        slowest = max((o.seconds for o in self.tally.outcomes), default=0.0)
        return "\n".join(
            [
                report(self.tally, "PostgreSQL stopped and started mid-load", tolerate_unavailable=True),
                f"outage {self.outage:.1f} s; clean 503 answers: {self.unavailable}; slowest answer "
                f"{slowest:.2f} s (PASSGATE_DATABASE_TIMEOUT {self.timeout:g} s); service back "
                f"{self.recovered_after:.2f} s after the database (last 503 ended), first write answered "
                f"{self.first_success:.2f} s after it",
                f"after: {len(self.tally.sessions)} acknowledged sessions checked, "
                f"{len(self.dead_sessions)} lost; "
                f"{len(self.lost_accounts)} accounts that cannot sign in",
                f"problems: {len(self.errors)}" + "".join(f"\n  {p}" for p in self.errors[:10]),
            ]
        )


async def postgres_restart(
    servers: list[RunningServer],
    cluster: PrivatePostgres,
    *,
    users: int,
    concurrency: int,
    before: float,
    outage: float,
    after: float,
    database_timeout: float,
) -> RestartResult:
    accounts = await register(servers[0], users)
    refused = await signed_out_cookie(servers[0])
    timeout = database_timeout
    load = Load(servers, accounts, refused, mix=FAULT_MIX, concurrency=concurrency, timeout=timeout + 10)
    running = asyncio.ensure_future(load.run())
    await asyncio.sleep(before)
    await asyncio.to_thread(cluster.stop)
    stopped = time.monotonic()
    await asyncio.sleep(outage)
    await asyncio.to_thread(cluster.start)
    back = time.monotonic()
    await asyncio.sleep(after)
    load.stop()
    tally = await running
    result = RestartResult(tally=tally, timeout=timeout, outage=back - stopped)
    refused_ends = [o.started + o.seconds for o in tally.outcomes if o.unavailable]
    result.unavailable = len(refused_ends)
    result.recovered_after = max(0.0, max(refused_ends, default=back) - back)
    needs_database = {"signin/begin", "signup/begin", "signin/finish", "signup/finish"}
    result.first_success = min(
        (o.started + o.seconds - back for o in tally.outcomes
         if o.operation in needs_database and o.expected and o.started >= back),
        default=float("inf"),
    )  # fmt: skip
    result.dead_sessions = await dead_sessions(servers, tally.sessions)
    result.lost_accounts = await cannot_sign_in(servers[0], accounts + tally.signed_up)
    return result


@contextlib.contextmanager
def postgres_setup(
    root: Path, instances: int, database_timeout: float
) -> Iterator[tuple[PrivatePostgres, list[RunningServer]]]:
    with private_postgres() as cluster:
        env = {"PASSGATE_DATABASE_URL": cluster.url, "PASSGATE_DATABASE_TIMEOUT": str(database_timeout)}
        with run_instances(root, instances, env=env) as servers:
            yield cluster, servers


# --------------------------------------------------------------------------- kill -9 on SQLite


@dataclass
class KillResult:
    tally: Tally
    killed_at: float = 0.0  # time.monotonic() of the SIGKILL
    integrity: str = ""
    lost_accounts: list[str] = field(default_factory=list)
    restart_seconds: float = 0.0

    @property
    def errors(self) -> list[str]:
        problems = [
            f"before the kill: {o.operation} -> {o.status} {o.code}"
            for o in self.tally.errors()
            if o.started + o.seconds < self.killed_at
        ]
        if self.integrity != "ok":
            problems.append(f"integrity_check: {self.integrity}")
        return problems + [f"acknowledged sign-up lost: {name}" for name in self.lost_accounts]

    def describe(self) -> str:
        return "\n".join(
            [
                report(self.tally, "SQLite: kill -9 mid-load (errors after the kill are expected)"),
                f"acknowledged sign-ups: {len(self.tally.signed_up)}; after the restart "
                f"({self.restart_seconds:.1f} s to answer): integrity_check {self.integrity!r}, "
                f"{len(self.lost_accounts)} cannot sign in",
                f"problems: {len(self.errors)}" + "".join(f"\n  {p}" for p in self.errors[:10]),
            ]
        )


async def kill_nine(
    root: Path, *, users: int, concurrency: int, seconds: float, workers: int = 1
) -> KillResult:
    with run_instances(root, 1, workers=workers) as servers:
        server = servers[0]
        accounts = await register(server, users)
        refused = await signed_out_cookie(server)
        load = Load(servers, accounts, refused, mix=KILL_MIX, concurrency=concurrency, timeout=10)
        running = asyncio.ensure_future(load.run())
        await asyncio.sleep(seconds)
        killed_at = time.monotonic()
        os.killpg(server.process.pid, signal.SIGKILL)  # the server and its workers, mid-request
        await asyncio.to_thread(server.process.wait)
        load.stop()
        tally = await running
        database = server.data_dir / "passgate.db"
    result = KillResult(tally=tally, killed_at=killed_at)
    started = time.monotonic()
    with run_instances(root, 1, workers=workers) as servers:  # same name: same data directory
        result.restart_seconds = time.monotonic() - started
        with contextlib.closing(sqlite3.connect(database)) as connection:
            result.integrity = str(connection.execute("PRAGMA integrity_check").fetchone()[0])
        result.lost_accounts = await cannot_sign_in(servers[0], tally.signed_up)
    return result


# --------------------------------------------------------------------------- SQLite write lock

HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""


class LockHolder:
    """Another process holding SQLite's write lock (`BEGIN IMMEDIATE`) until `release()`."""

    def __init__(self, database: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "locked":
            self.process.kill()
            raise RuntimeError(f"the lock holder did not take the lock: {line!r}")

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class Timed:
    status: int
    code: str
    seconds: float


@dataclass
class LockResult:
    timeout: float
    busy_write: Timed | None = None  # a write while the lock is held longer than the wait
    waited_write: Timed | None = None  # a write whose wait ends with the lock released in time
    write_after: Timed | None = None  # a write after the release
    flowing: list[Timed] = field(default_factory=list)  # static and cached forward-auth during the lock

    @property
    def errors(self) -> list[str]:
        problems: list[str] = []
        busy, waited, after = self.busy_write, self.waited_write, self.write_after
        if busy is None or (busy.status, busy.code) != (503, "database_busy"):
            problems.append(f"write during the lock: {busy}, expected 503 database_busy")
        elif not self.timeout * 0.8 <= busy.seconds <= self.timeout + 2:
            problems.append(
                f"write during the lock answered after {busy.seconds:.2f} s, not ~{self.timeout:g} s"
            )
        if waited is None or waited.status != 200:
            problems.append(f"write released within its wait: {waited}, expected 200")
        if after is None or after.status != 200:
            problems.append(f"write after the release: {after}, expected 200")
        if not self.flowing:
            problems.append("no static or forward-auth request completed during the lock")
        problems += [
            f"during the lock: {t.status} after {t.seconds:.2f} s"
            for t in self.flowing
            if t.status not in (200, 204)
        ]
        slow = [t for t in self.flowing if t.seconds > 0.5]
        problems += [f"during the lock, a request waited {t.seconds:.2f} s" for t in slow]
        return problems

    def describe(self) -> str:
        latencies = sorted(t.seconds for t in self.flowing)
        flowing = (
            f"{len(self.flowing)} static/forward-auth answers during the lock: p50 "
            f"{percentile(latencies, 0.5) * 1e3:.1f} ms, max {max(latencies, default=0) * 1e3:.1f} ms"
        )
        return "\n".join(
            [
                f"SQLite write lock held by another process (PASSGATE_DATABASE_TIMEOUT {self.timeout:g} s)",
                flowing,
                f"write while locked: {self.busy_write}",
                f"write while locked, lock released within the wait: {self.waited_write}",
                f"write after the release: {self.write_after}",
                f"problems: {len(self.errors)}" + "".join(f"\n  {p}" for p in self.errors[:10]),
            ]
        )


async def _timed(
    connection: Connection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Timed:
    started = time.monotonic()
    response = await connection.request(method, path, body, headers)
    code = ""
    if response.status >= 400 and response.body.startswith(b"{"):
        code = str(response.json().get("code", ""))
    return Timed(response.status, code, time.monotonic() - started)


async def sqlite_lock(root: Path, *, database_timeout: float) -> LockResult:
    timeout = database_timeout
    env = {"PASSGATE_DATABASE_TIMEOUT": str(timeout), "PASSGATE_REVOCATION_WINDOW": "300"}
    result = LockResult(timeout=timeout)
    with run_instances(root, 1, env=env) as servers:
        server = servers[0]
        (user,) = await register(server, 1, parallel=1)
        reader = Connection("127.0.0.1", server.port, origin=server.url)
        writer = Connection("127.0.0.1", server.port, origin=server.url)
        gate = {**PROXY_HEADERS, "Cookie": f"{COOKIE}={user.cookie}"}
        write = ("POST", "/auth/login/begin", b"{}")
        try:
            assert (
                await _timed(reader, "GET", "/auth/forward-auth", headers=gate)
            ).status == 204  # cached now
            holder = LockHolder(server.data_dir / "passgate.db")
            try:
                pending = asyncio.ensure_future(_timed(writer, *write))
                while not pending.done():
                    result.flowing.append(await _timed(reader, "GET", "/static/passgate.css"))
                    result.flowing.append(await _timed(reader, "GET", "/auth/forward-auth", headers=gate))
                    await asyncio.sleep(0.02)
                result.busy_write = await pending
                pending = asyncio.ensure_future(_timed(writer, *write))
                await asyncio.sleep(timeout / 3)
            finally:
                holder.release()
            result.waited_write = await pending
            result.write_after = await _timed(writer, *write)
        finally:
            await reader.close()
            await writer.close()
    return result


# --------------------------------------------------------------------------- command line


async def scenario(name: str, root: Path, args: argparse.Namespace) -> list[str]:
    if name == "postgres-restart":
        with postgres_setup(root / name, args.instances, args.timeout) as (cluster, servers):
            third = args.seconds / 3
            restart = await postgres_restart(
                servers, cluster, users=args.users, concurrency=args.concurrency,
                before=third, outage=third, after=third, database_timeout=args.timeout,
            )  # fmt: skip
        print(restart.describe())
        return restart.errors
    if name == "kill-9":
        killed = await kill_nine(
            root / name, users=args.users, concurrency=args.concurrency, seconds=args.seconds / 2
        )
        print(killed.describe())
        return killed.errors
    locked = await sqlite_lock(root / name, database_timeout=args.timeout)
    print(locked.describe())
    return locked.errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("scenario", choices=["postgres-restart", "kill-9", "sqlite-lock", "all"])
    parser.add_argument("--seconds", type=float, default=9.0, help="load duration (split around the fault)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--users", type=int, default=128)
    parser.add_argument(
        "--instances", type=int, default=2, help="Passgate instances on the private PostgreSQL"
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="PASSGATE_DATABASE_TIMEOUT for the servers"
    )
    args = parser.parse_args(argv)
    args.users = max(args.users, args.concurrency)
    names = ["postgres-restart", "kill-9", "sqlite-lock"] if args.scenario == "all" else [args.scenario]
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    problems: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="passgate-faults-") as root:
            for name in names:
                problems += loop.run_until_complete(scenario(name, Path(root), args))
                print()
    finally:
        loop.close()
    print(f"({machine()}; concurrency {args.concurrency}, {args.users} users)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
