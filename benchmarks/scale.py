"""Flat in the number of users: sign-in and `/auth/me` on PostgreSQL with 1,000 and 1,000,000 accounts.

    .venv/bin/python benchmarks/scale.py                                 # 1,000 then 1,000,000 accounts
    .venv/bin/python benchmarks/scale.py --users 1000,100000 --seconds 5
    .venv/bin/python benchmarks/scale.py --database-url postgresql://postgres@host:5432/postgres --keep

For each `--users` size, a scratch database on the given PostgreSQL server (dropped at the end unless
`--keep`), migrated by the `passgate serve` that measures it as it starts:

1. One account signs up over HTTP (the *reference*). Each database is then bulk-loaded with `COPY`
   (`benchmarks/population.py`): accounts 0 … size-1, rows shaped like the reference's, each account
   with its own ES256 key pair, its audit event and its session; then VACUUM ANALYZE. The time is
   printed.
2. One `passgate serve` (one worker) per database. `--concurrency` connections run full usernameless
   sign-ins, named sign-ins (`{"user_name": …}`), and `GET /auth/me` with as many cookies at each size
   from those named sign-ins, in `--rounds` rounds that alternate between the sizes, so the machine's
   load moves every size alike. Signing-in accounts are drawn at random from the whole population
   (any account can sign in: its key is derived from the run's seed), so neither PostgreSQL's buffers
   nor Passgate's caches see a small set. (`/auth/me` is answered from memory while its session and
   user are unchanged, as in service: PostgreSQL is read on each session's first visit, made before
   the measurement, and again after any change.) It prints Passgate's CPU per operation (the server's process
   tree, /proc) and PostgreSQL's (the server's backends, known by their `application_name`, also from
   /proc: PostgreSQL must run on this machine), the median of the rounds, and the ratio of the largest
   size to the smallest against the target (1.2x).
3. On the largest: two `passgate serve` instances on the database (same secret keys), rounds
   alternating with one instance, and their sign-in throughput; `EXPLAIN (ANALYZE, BUFFERS)` of every
   statement the request paths send (`benchmarks/plans.py`), failing when a hot one scans a big table
   sequentially; the tables' and indexes' sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import plans
import psycopg
from common import (
    COOKIE,
    Connection,
    HttpError,
    Server,
    User,
    machine,
    new_event_loop,
    percentile,
    register,
    run_server,
    scratch_postgres,
    tree_cpu_seconds,
)
from population import TABLES, Population, Reference, load

TARGET_RATIO = 1.2
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
Operation = Callable[[Connection, User], Awaitable[float]]
Work = Callable[[Server], Operation]  # the operation as sent to one server (a sign-in signs its origin)


# --------------------------------------------------------------------------- CPU of the database


class PostgresCpu:
    """CPU seconds of the backends serving some Passgate instances, known by the `application_name` their
    database URL gives them (PostgreSQL runs on this machine: /proc shows its processes)."""

    def __init__(self, url: str, names: list[str]):
        self.connection = psycopg.connect(url, autocommit=True)
        self.names = names

    def _pids(self) -> list[int]:
        rows = self.connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = ANY(%s)", (self.names,)
        ).fetchall()
        return [int(row[0]) for row in rows]

    def snapshot(self) -> dict[int, float]:
        return {pid: tree_cpu_seconds(pid) for pid in self._pids()}

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())

    def close(self) -> None:
        self.connection.close()


# --------------------------------------------------------------------------- one measured operation


@dataclass
class Measured:
    operation: str
    accounts: int
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    client_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""
    rounds: list[Measured] = field(default_factory=list)

    def per_op(self, seconds: float) -> float:
        return seconds / self.ops * 1e6 if self.ops else float("nan")

    @property
    def server_us(self) -> float:
        """Passgate CPU per operation: the median of the rounds (a noisy neighbour moves one round)."""
        if self.rounds:
            return statistics.median(item.server_us for item in self.rounds)
        return self.per_op(self.server_cpu)

    @property
    def postgres_us(self) -> float:
        if self.rounds:
            return statistics.median(item.postgres_us for item in self.rounds)
        return self.per_op(self.postgres_cpu)

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def spread(self) -> str:
        """The rounds' lowest and highest Passgate CPU per operation: how noisy the machine was."""
        values = [item.server_us for item in self.rounds] or [self.server_us]
        return f"{min(values):.0f}-{max(values):.0f}"

    @classmethod
    def of(cls, rounds: list[Measured]) -> Measured:
        first = rounds[0]
        total = cls(first.operation, first.accounts, rounds=rounds)
        for item in rounds:
            total.ops += item.ops
            total.errors += item.errors
            total.seconds += item.seconds
            total.server_cpu += item.server_cpu
            total.postgres_cpu += item.postgres_cpu
            total.client_cpu += item.client_cpu
            total.latencies.extend(item.latencies)
            total.first_error = total.first_error or item.first_error
        total.latencies.sort()
        return total


class Driver:
    """Keep-alive connections drawing accounts at random from the whole population. Connection k only
    draws accounts whose index is k modulo the concurrency, so no passkey is used by two at once (its
    sign count must rise in the order the server sees the assertions)."""

    def __init__(self, population: Population, concurrency: int, accounts: int):
        self.population, self.concurrency, self.accounts = population, concurrency, accounts
        self.users: dict[int, User] = {}
        self.drawn: list[int] = []  # every draw, in order
        self.random = random.Random(os.urandom(8))

    def draw(self, lane: int) -> User:
        index = lane + self.concurrency * self.random.randrange(
            (self.accounts - 1 - lane) // self.concurrency + 1
        )
        user = self.users.get(index)
        if user is None:
            account = self.population.account(index)
            user = User(account.user_name, self.population.authenticator(index))
            self.users[index] = user
        self.drawn.append(index)
        return user

    def signed_in_since(self, mark: int) -> list[User]:
        """The users drawn since draw number `mark` who hold a session cookie."""
        indexes = dict.fromkeys(self.drawn[mark:])
        return [self.users[index] for index in indexes if self.users[index].cookie]


async def run_phase(
    servers: list[Server],
    postgres: PostgresCpu,
    name: str,
    accounts: int,
    work: Work,
    pick: Callable[[int], User],
    concurrency: int,
    seconds: float,
) -> Measured:
    """`concurrency` connections, spread over `servers`, run `work(server)` on `pick(lane)` for `seconds`."""
    measured = Measured(operation=name, accounts=accounts)
    deadline = time.perf_counter() + seconds

    async def lane(index: int) -> None:
        server = servers[index % len(servers)]
        operation = work(server)
        connection = Connection("127.0.0.1", server.port, origin=server.origin)
        try:
            while time.perf_counter() < deadline:
                try:
                    measured.latencies.append(await operation(connection, pick(index)))
                    measured.ops += 1
                except (HttpError, OSError, ValueError) as exc:
                    measured.errors += 1
                    measured.first_error = measured.first_error or str(exc)
                    await connection.close()
        finally:
            await connection.close()

    server_before = sum(server.cpu_seconds() for server in servers)
    postgres_before, client_before = postgres.snapshot(), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(lane(index) for index in range(concurrency)))
    measured.seconds = time.perf_counter() - started
    measured.server_cpu = sum(server.cpu_seconds() for server in servers) - server_before
    measured.postgres_cpu = PostgresCpu.spent(postgres_before, postgres.snapshot())
    measured.client_cpu = time.process_time() - client_before
    measured.latencies.sort()
    return measured


def sign_in(origin: str, named: bool) -> Operation:
    """A full sign-in (begin, sign, finish) over the keep-alive connection; the two round trips' time."""

    async def operation(connection: Connection, user: User) -> float:
        started = time.perf_counter()
        begin = await connection.post_json("/auth/login/begin", {"user_name": user.name} if named else {})
        begun = time.perf_counter()
        if begin.status != 200:
            raise HttpError(f"login/begin {begin.status}: {begin.body[:200]!r}")
        assertion = user.authenticator.get(begin.json(), origin=origin)
        signed = time.perf_counter()
        finish = await connection.post_json("/auth/login/finish", assertion)
        finished = time.perf_counter()
        token = finish.cookie(COOKIE)
        if finish.status != 200 or not token:
            raise HttpError(f"login/finish {finish.status}: {finish.body[:200]!r}")
        user.cookie = token
        return (begun - started) + (finished - signed)

    return operation


async def me(connection: Connection, user: User) -> float:
    started = time.perf_counter()
    response = await connection.request("GET", "/auth/me", headers={"Cookie": f"{COOKIE}={user.cookie}"})
    if response.status != 200:
        raise HttpError(f"me {response.status}: {response.body[:200]!r}")
    return time.perf_counter() - started


def signing_in(named: bool) -> Work:
    return lambda server: sign_in(server.origin, named)


@dataclass
class Stage:
    """One size: its database, its server(s), its database CPU gauge and its driver (sign counts)."""

    size: int
    url: str
    servers: list[Server]
    postgres: PostgresCpu
    driver: Driver
    results: list[Measured] = field(default_factory=list)


async def alternate(
    stages: list[Stage],
    name: str,
    work: Work,
    pick: Callable[[Stage], Callable[[int], User]],
    args: argparse.Namespace,
) -> list[Measured]:
    """A warm-up per stage, then `--rounds` rounds of `--seconds / --rounds` per stage, alternating."""
    rounds: list[list[Measured]] = [[] for _ in stages]
    length = args.seconds / args.rounds
    for number in range(args.rounds + (1 if args.warmup > 0 else 0)):
        warming = args.warmup > 0 and number == 0
        for position, stage in enumerate(stages):
            measured = await run_phase(
                stage.servers,
                stage.postgres,
                name,
                stage.size,
                work,
                pick(stage),
                args.concurrency,
                args.warmup if warming else length,
            )
            if not warming:
                rounds[position].append(measured)
    return [Measured.of(items) for items in rounds]


async def measure_sizes(stages: list[Stage], args: argparse.Namespace) -> None:
    """Usernameless and named sign-ins, then `/auth/me` with cookies the named ones got, every size alike."""
    marks: list[int] = []
    for name, named in (("sign-in usernameless", False), ("sign-in named", True)):
        _say(f"{name}…")
        marks = [len(stage.driver.drawn) for stage in stages]
        for stage, measured in zip(
            stages, await alternate(stages, name, signing_in(named), _drawing, args), strict=True
        ):
            stage.results.append(measured)
    _say("GET /auth/me…")
    # The same number of sessions at every size, drawn alike from the sessions the named sign-ins began
    # (the same minute at every size), so that every size meets the per-session work alike: a token's
    # verification (once per process) and the last-seen write (once a minute per session).
    found = [stage.driver.signed_in_since(mark) for stage, mark in zip(stages, marks, strict=True)]
    count = min(len(users) for users in found)
    if count == 0:
        raise RuntimeError("a size had no successful named sign-in: nothing to call /auth/me with")
    pool = random.Random(os.urandom(8))
    cookies = {stage.size: pool.sample(users, count) for stage, users in zip(stages, found, strict=True)}
    for stage in stages:  # one visit of each session first: no size pays first-use costs when measured
        await _visit_once(stage.servers, cookies[stage.size], args.concurrency)

    def cookie(stage: Stage) -> Callable[[int], User]:
        return lambda _: pool.choice(cookies[stage.size])

    for stage, measured in zip(
        stages, await alternate(stages, "GET /auth/me", lambda _: me, cookie, args), strict=True
    ):
        stage.results.append(measured)


def _drawing(stage: Stage) -> Callable[[int], User]:
    return stage.driver.draw


async def _visit_once(servers: list[Server], users: list[User], concurrency: int) -> None:
    async def lane(index: int) -> None:
        server = servers[index % len(servers)]
        connection = Connection("127.0.0.1", server.port, origin=server.origin)
        try:
            for user in users[index::concurrency]:
                await me(connection, user)
        finally:
            await connection.close()

    await asyncio.gather(*(lane(index) for index in range(concurrency)))


# --------------------------------------------------------------------------- the run


@dataclass
class Outcome:
    stages: list[Stage] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    single: Measured | None = None  # one instance, in the rounds alternating with `pair`
    pair: Measured | None = None
    plans: list[plans.Plan] = field(default_factory=list)
    plans_ok: bool = True

    @property
    def measured(self) -> list[Measured]:
        found = [item for stage in self.stages for item in stage.results]
        return found + [item for item in (self.single, self.pair) if item is not None]

    @property
    def errors(self) -> int:
        return sum(item.errors for item in self.measured)


async def run(args: argparse.Namespace) -> Outcome:
    """Every size, the two instances, the plans and the sizes, on scratch databases."""
    outcome = Outcome()
    secret = secrets.token_urlsafe(48)
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(scratch_postgres(args.database_url, args.keep)) for _ in args.users]
        # A server per size (each migrates its database as it starts), and the largest's second instance.
        wanted = urls + ([urls[-1]] if args.pair_seconds > 0 else [])
        names = [f"passgate-scale-{number}" for number in range(len(wanted))]
        environments = [_env(url, secret, name) for url, name in zip(wanted, names, strict=True)]
        servers = await _start_all(stack, environments)
        (reference,) = await register(servers[0], 1, parallel=1, prefix="ref")
        population = Population.new(Reference.read(urls[0], reference.name))
        for size, url in zip(args.users, urls, strict=True):
            outcome.loads.append(_load(url, population, size, args.jobs))
        for size, url, server, name in zip(args.users, urls, servers, names, strict=False):
            postgres = PostgresCpu(url, [name])
            stack.callback(postgres.close)
            driver = Driver(population, args.concurrency, size)
            outcome.stages.append(Stage(size, url, [server], postgres, driver))
        await measure_sizes(outcome.stages, args)
        largest = outcome.stages[-1]
        if args.pair_seconds > 0:
            _say("two instances…")
            both = PostgresCpu(largest.url, names[-2:])
            stack.callback(both.close)
            pair = Stage(largest.size, largest.url, servers[-2:], both, largest.driver)
            seconds, args.seconds = args.seconds, args.pair_seconds
            outcome.single, outcome.pair = await alternate(
                [largest, pair], "sign-in usernameless", signing_in(False), _drawing, args
            )
            args.seconds = seconds
            outcome.single.operation, outcome.pair.operation = "sign-in, 1 instance", "sign-in, 2 instances"
        _say("query plans…")
        outcome.plans = plans.explain(largest.url, population, random.randrange(largest.size), largest.size)
        report(outcome, args)
        outcome.plans_ok = (
            plans.report(outcome.plans, verbose=not args.quiet_plans) or largest.size < args.check_from
        )
        plans.print_sizes(list(plans.sizes(largest.url, (*TABLES, "challenges", "revocations"))))
        labelled = [(f"{stage.size:,} accounts", stage.url) for stage in outcome.stages]
        plans.print_updates(labelled, ("users", "credentials", "sessions"))
    return outcome


async def _start_all(stack: contextlib.ExitStack, environments: list[dict[str, str]]) -> list[Server]:
    """`passgate serve` for each environment, started at once (each on a thread); stopped with `stack`."""

    def start(env: dict[str, str]) -> tuple[Server, contextlib.ExitStack]:
        with contextlib.ExitStack() as running:
            server = running.enter_context(run_server(env=env))
            return server, running.pop_all()

    started = await asyncio.gather(
        *(asyncio.to_thread(start, env) for env in environments), return_exceptions=True
    )
    servers = []
    for result in started:  # stop every server that did start, even when another one failed
        if isinstance(result, tuple):
            stack.enter_context(result[1])
            servers.append(result[0])
    for result in started:
        if isinstance(result, BaseException):
            raise result
    return servers


def _env(url: str, secret: str, name: str) -> dict[str, str]:
    """A server's environment: its database connections carry `name` (PostgresCpu finds them by it)."""
    return {"PASSGATE_DATABASE_URL": f"{url}?application_name={name}", "PASSGATE_SECRET_KEYS": secret}


def _load(url: str, population: Population, size: int, jobs: int) -> str:
    _say(f"loading {size:,} accounts…")
    line = str(load(url, population, 0, size, jobs=jobs))
    _say(line)
    return line


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- report


def report(outcome: Outcome, args: argparse.Namespace) -> None:
    print()
    for line in outcome.loads:
        print(line)
    print()
    print(
        f"{'accounts':>10} {'operation':<22} {'ops':>6} {'ops/s':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'Passgate µs/op':>14} {'PostgreSQL µs/op':>16} {'client µs/op':>12} {'errors':>6}"
    )
    for item in outcome.measured:
        print(
            f"{item.accounts:>10,} {item.operation:<22} {item.ops:>6} {item.throughput:>6.0f} "
            f"{percentile(item.latencies, 0.5) * 1e3:>7.2f} {percentile(item.latencies, 0.99) * 1e3:>7.2f} "
            f"{item.server_us:>14.0f} {item.postgres_us:>16.0f} {item.per_op(item.client_cpu):>12.0f} "
            f"{item.errors:>6}"
        )
        if item.errors:
            print(f"{'':>10} first error: {item.first_error}")
    smallest, largest = outcome.stages[0], outcome.stages[-1]
    if len(outcome.stages) > 1:
        print()
        print(
            f"Passgate CPU per operation, {largest.size:,} accounts against {smallest.size:,} "
            f"(target ≤ {TARGET_RATIO}x; medians of {args.rounds} alternating rounds):"
        )
        for small, big in zip(smallest.results, largest.results, strict=True):
            ratio = big.server_us / small.server_us
            verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
            print(
                f"  {small.operation:<22} {small.server_us:>6.0f} → {big.server_us:>6.0f} µs  {ratio:.2f}x  "
                f"{verdict}   (rounds {small.spread} → {big.spread}; PostgreSQL {small.postgres_us:.0f} → "
                f"{big.postgres_us:.0f} µs, {big.postgres_us / small.postgres_us:.2f}x)"
            )
    if outcome.single is not None and outcome.pair is not None:
        single, pair = outcome.single, outcome.pair
        print()
        print(
            f"two instances, usernameless sign-in at {largest.size:,} accounts (rounds alternating with one "
            f"instance): {pair.throughput:.0f}/s combined against {single.throughput:.0f}/s for one "
            f"({pair.throughput / single.throughput:.2f}x). Cores busy during the two-instance rounds: "
            f"servers {pair.server_cpu / pair.seconds:.2f}, PostgreSQL "
            f"{pair.postgres_cpu / pair.seconds:.2f}, load driver {pair.client_cpu / pair.seconds:.2f}, "
            f"of {os.cpu_count()}"
        )
    print()
    print(
        f"({machine()}; concurrency {args.concurrency}, {args.seconds:g} s per operation after "
        f"{args.warmup:g} s warm-up, one worker per instance; load average {_load_average()})"
    )


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", default="1000,1000000", help="comma-separated population sizes, growing")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds per operation and size")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds before each sign-in kind"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="connections")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per operation (the median counts)")
    parser.add_argument("--pair-seconds", type=float, default=8.0, help="two-instance run (0 skips it)")
    parser.add_argument("--jobs", type=int, default=2, help="processes building rows for COPY")
    parser.add_argument(
        "--check-from",
        type=int,
        default=100_000,
        help="from this many accounts, a hot statement scanning a big table sequentially fails the run",
    )
    parser.add_argument("--database-url", default=DEFAULT_URL, help="a PostgreSQL server (scratch database)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--quiet-plans", action="store_true", help="print the plans' summary only")
    args = parser.parse_args(argv)
    args.users = [int(item.replace("_", "")) for item in str(args.users).split(",") if item.strip()]
    if args.users != sorted(args.users) or args.users[0] < args.concurrency:
        parser.error("--users: growing sizes, each at least --concurrency")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    _say(f"load average at start: {_load_average()}")
    loop = new_event_loop()
    try:
        outcome = loop.run_until_complete(run(args))
    finally:
        loop.close()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0 if outcome.errors == 0 and outcome.plans_ok else 1


if __name__ == "__main__":
    sys.exit(main())
