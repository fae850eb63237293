"""Mixed load: passkey sign-ins, `GET /auth/me` and forward-auth against real `passgate serve` processes.

    .venv/bin/python benchmarks/load.py                         # SQLite, 1 worker, 100,000 requests, c=64
    .venv/bin/python benchmarks/load.py --workers 2             # SQLite, 2 uvicorn workers
    .venv/bin/python benchmarks/load.py --instances 2 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test   # two instances on one PostgreSQL
    .venv/bin/python benchmarks/load.py --requests 2000 --concurrency 16   # the test suite's short run

It registers `--users` accounts with the test suite's software authenticator (real ES256 keys), then
`--concurrency` keep-alive connections send `--requests` requests in a fixed mix (`--mix`, weights):
usernameless sign-ins (`login/begin` + signing + `login/finish`: two requests), `GET /auth/me` with the
session cookie, forward-auth as a proxy sends it, sign-ups (two requests), and requests that must be
refused: `/auth/me` and forward-auth with the cookie of a signed-out session (expected 401). Every answer
must be the expected status; anything else (a 5xx, a timeout, a closed connection) is an error, and the
script exits non-zero when there is one. It prints throughput, per-operation p50/p99/max latency and
the status counts. Connections are spread over the instances; with several instances they share one
database and one signing key, so a session from one is valid on the other.

The same driver (`Load`) runs the fault scenarios of `benchmarks/faults.py` and the test suite's runs
(`tests/test_faults.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    COOKIE,
    Connection,
    HttpError,
    User,
    machine,
    new_event_loop,
    percentile,
    register,
    scratch_postgres,
)

from servers import RunningServer, free_port, start_passgate
from softkey import SoftAuthenticator

SHARED_KEY = "L" * 48  # every instance signs with it
PROXY_HEADERS = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "app.localhost",
    "X-Forwarded-Uri": "/dashboard?tab=weekly",
    "X-Forwarded-Method": "GET",
    "X-Forwarded-For": "203.0.113.7",
}
DEFAULT_MIX = "signin=2,me=4,forward=6,me-refused=1,forward-refused=1"
EXPECTED = {
    "signin": 200,
    "signup": 200,
    "me": 200,
    "forward": 204,
    "me-refused": 401,
    "forward-refused": 401,
}
REQUESTS_PER = {"signin": 2, "signup": 2}  # the others are one request


@dataclass(slots=True)
class Outcome:
    """One request: `status` 0 means no HTTP answer (timeout, connection refused or closed)."""

    operation: str  # e.g. "signin/finish", "me", "forward-refused"
    status: int
    code: str
    started: float  # time.monotonic()
    seconds: float

    @property
    def kind(self) -> str:
        return self.operation.split("/", 1)[0]

    @property
    def expected(self) -> bool:
        return self.status == EXPECTED[self.kind]

    @property
    def unavailable(self) -> bool:
        """A clean refusal while the database is in trouble: 503 with a database code."""
        return self.status == 503 and self.code in {"database_busy", "database_unavailable"}


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    signed_up: list[User] = field(default_factory=list)  # acknowledged sign-ups (200 and a cookie)
    sessions: list[str] = field(default_factory=list)  # acknowledged session cookies (200 sign-in/up)
    started: float = 0.0
    seconds: float = 0.0

    def errors(self, *, tolerate_unavailable: bool = False) -> list[Outcome]:
        """Answers other than expected (optionally letting clean 503s through)."""
        return [
            outcome
            for outcome in self.outcomes
            if not outcome.expected and not (tolerate_unavailable and outcome.unavailable)
        ]

    def refused_but_allowed(self) -> list[Outcome]:
        """Requests that must be refused and got a 2xx anyway (never acceptable)."""
        return [o for o in self.outcomes if o.kind.endswith("-refused") and 200 <= o.status < 300]


class Load:
    """`concurrency` connections over `servers`, sending the mix until `total` requests or `stop()`."""

    def __init__(
        self,
        servers: Sequence[RunningServer],
        users: list[User],
        refused_cookie: str,
        *,
        mix: str = DEFAULT_MIX,
        concurrency: int = 64,
        timeout: float = 30.0,
    ):
        self.servers = servers
        self.users = users
        self.refused_cookie = refused_cookie
        self.pattern = parse_mix(mix)
        self.concurrency = concurrency
        self.timeout = timeout  # a request without an answer by then is recorded as status 0
        self.tally = Tally()
        self._sent = 0
        self._stopped = False
        self._run = uuid.uuid4().hex[:6]

    def stop(self) -> None:
        self._stopped = True

    async def run(self, total: int | None = None) -> Tally:
        self.tally.started = time.monotonic()
        await asyncio.gather(*(self._worker(index, total) for index in range(self.concurrency)))
        self.tally.seconds = time.monotonic() - self.tally.started
        return self.tally

    async def _worker(self, index: int, total: int | None) -> None:
        server = self.servers[index % len(self.servers)]
        connection = Connection("127.0.0.1", server.port, origin=server.url)
        users = self.users[index :: self.concurrency] or [self.users[index % len(self.users)]]
        mine = itertools.cycle(users)
        operations = itertools.islice(itertools.cycle(self.pattern), index, None)
        serial = itertools.count()
        try:
            for operation in operations:
                if self._stopped or (total is not None and self._sent >= total):
                    return
                self._sent += REQUESTS_PER.get(operation, 1)
                if operation == "signup":
                    await self._sign_up(connection, server, f"load-{self._run}-{index}-{next(serial)}")
                else:
                    await self._one(connection, server, operation, next(mine))
        finally:
            await connection.close()

    async def _request(
        self,
        connection: Connection,
        operation: str,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Outcome, dict[str, object] | None, str | None]:
        started = time.monotonic()
        answer: dict[str, object] | None = None
        cookie = None
        try:
            response = await asyncio.wait_for(connection.request(method, path, body, headers), self.timeout)
            status = response.status
            with contextlib.suppress(ValueError):
                parsed = response.json() if response.body else None
                answer = parsed if isinstance(parsed, dict) else None
            cookie = response.cookie(COOKIE)
        except (HttpError, OSError, TimeoutError):
            await connection.close()
            status = 0
        code = str(answer.get("code", "")) if answer else ""
        outcome = Outcome(operation, status, code, started, time.monotonic() - started)
        self.tally.outcomes.append(outcome)
        return outcome, answer, cookie

    async def _post(
        self, connection: Connection, operation: str, path: str, value: object
    ) -> tuple[Outcome, dict[str, object] | None, str | None]:
        body = json.dumps(value, separators=(",", ":")).encode()
        return await self._request(connection, operation, "POST", path, body=body)

    async def _one(self, connection: Connection, server: RunningServer, operation: str, user: User) -> None:
        if operation == "signin":
            await self._sign_in(connection, server, user)
        elif operation in {"me", "me-refused"}:
            cookie = user.cookie if operation == "me" else self.refused_cookie
            await self._request(
                connection, operation, "GET", "/auth/me", headers={"Cookie": f"{COOKIE}={cookie}"}
            )
        elif operation in {"forward", "forward-refused"}:
            cookie = user.cookie if operation == "forward" else self.refused_cookie
            headers = {**PROXY_HEADERS, "Cookie": f"{COOKIE}={cookie}"}
            await self._request(connection, operation, "GET", "/auth/forward-auth", headers=headers)
        else:
            raise ValueError(f"unknown operation {operation!r}")

    async def _sign_in(self, connection: Connection, server: RunningServer, user: User) -> None:
        begin, options, _ = await self._post(connection, "signin/begin", "/auth/login/begin", {})
        if begin.status != 200 or options is None:
            return
        assertion = user.authenticator.get(options, origin=server.url)
        finish, _, cookie = await self._post(connection, "signin/finish", "/auth/login/finish", assertion)
        if finish.status == 200 and cookie:
            user.cookie = cookie
            self.tally.sessions.append(cookie)

    async def _sign_up(self, connection: Connection, server: RunningServer, name: str) -> None:
        begin, options, _ = await self._post(
            connection, "signup/begin", "/auth/register/begin", {"user_name": name}
        )
        if begin.status != 200 or options is None:
            return
        user = User(name=name, authenticator=SoftAuthenticator("ES256"))
        credential = user.authenticator.create(options, origin=server.url)
        finish, _, cookie = await self._post(connection, "signup/finish", "/auth/register/finish", credential)
        if finish.status == 200 and cookie:
            user.cookie = cookie
            self.tally.signed_up.append(user)
            self.tally.sessions.append(cookie)


def parse_mix(text: str) -> list[str]:
    """`"signin=2,me=4"` -> a fixed, shuffled cycle of operations with those weights."""
    pattern: list[str] = []
    for item in text.split(","):
        name, _, weight = item.strip().partition("=")
        if name not in EXPECTED:
            raise ValueError(f"unknown operation {name!r} in the mix (known: {', '.join(EXPECTED)})")
        pattern += [name] * int(weight or 1)
    random.Random(8).shuffle(pattern)
    return pattern


# --------------------------------------------------------------------------- setting up


def server_env(origins: Sequence[str], extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "PASSGATE_SECRET_KEYS": SHARED_KEY,
        "PASSGATE_ORIGINS": ",".join(origins),
        "PASSGATE_PUBLIC_URL": origins[0],
        "PASSGATE_TRUSTED_PROXIES": "127.0.0.1",
        # A per-second window: `limits`' in-memory moving window keeps one entry per hit (see
        # docs/performance.md); one client address sends everything here.
        "PASSGATE_RATE_LIMIT": "1000000/second",
    }
    env.update(extra or {})
    return env


@contextlib.contextmanager
def run_instances(
    root: Path, count: int = 1, *, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[list[RunningServer]]:
    """`count` `passgate serve` processes (each with `workers` workers) sharing keys and database."""
    ports = [free_port() for _ in range(count)]
    origins = [f"http://localhost:{port}" for port in ports]
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(
                start_passgate(
                    root,
                    env=server_env(origins, env),
                    port=port,
                    workers=workers,
                    args=("--log-level", "warning"),
                    name=f"instance-{index}",
                )
            )
            for index, port in enumerate(ports)
        ]
        yield servers


async def signed_out_cookie(server: RunningServer) -> str:
    """The cookie of a session that was signed out: every request with it must be refused."""
    (user,) = await register(server, 1, parallel=1, prefix="signed-out")
    connection = Connection("127.0.0.1", server.port, origin=server.url)
    try:
        response = await connection.request(
            "POST", "/auth/logout", b"{}", {"Cookie": f"{COOKIE}={user.cookie}"}
        )
        if response.status != 200:
            raise HttpError(f"logout {response.status}: {response.body[:200]!r}")
    finally:
        await connection.close()
    return user.cookie


# --------------------------------------------------------------------------- report


def report(tally: Tally, title: str, *, tolerate_unavailable: bool = False) -> str:
    lines = [title, f"{'operation':<16} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses"]
    by_operation: dict[str, list[Outcome]] = {}
    for outcome in tally.outcomes:
        by_operation.setdefault(outcome.operation, []).append(outcome)
    for operation in sorted(by_operation):
        outcomes = by_operation[operation]
        seconds = sorted(outcome.seconds for outcome in outcomes)
        statuses = Counter(
            f"{o.status}{' ' + o.code if o.code and o.status >= 400 else ''}" for o in outcomes
        )
        lines.append(
            f"{operation:<16} {len(outcomes):>9} {percentile(seconds, 0.5) * 1e3:>8.2f} "
            f"{percentile(seconds, 0.99) * 1e3:>8.2f} {seconds[-1] * 1e3:>8.1f}  "
            + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
        )
    errors = tally.errors(tolerate_unavailable=tolerate_unavailable)
    rate = len(tally.outcomes) / tally.seconds if tally.seconds else 0.0
    lines.append(
        f"total {len(tally.outcomes)} requests in {tally.seconds:.1f} s = {rate:,.0f} requests/s; "
        f"errors{' (beyond clean 503s)' if tolerate_unavailable else ''}: {len(errors)}"
    )
    for outcome in errors[:5]:
        lines.append(
            f"  error: {outcome.operation} -> {outcome.status} {outcome.code} after {outcome.seconds:.2f} s"
        )
    return "\n".join(lines)


async def benchmark(servers: list[RunningServer], args: argparse.Namespace) -> Tally:
    print(f"registering {args.users} users…", file=sys.stderr)
    users = await register(servers[0], args.users)
    refused = await signed_out_cookie(servers[0])
    load = Load(servers, users, refused, mix=args.mix, concurrency=args.concurrency)
    print(f"sending {args.requests:,} requests at concurrency {args.concurrency}…", file=sys.stderr)
    return await load.run(args.requests)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--users", type=int, default=128, help="accounts to register (at least concurrency)")
    parser.add_argument("--workers", type=int, default=1, help="`passgate serve --workers` per instance")
    parser.add_argument("--instances", type=int, default=1, help="`passgate serve` processes")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"operation weights (default {DEFAULT_MIX})")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server URL (a scratch database is created on it and dropped); default SQLite",
    )
    args = parser.parse_args(argv)
    args.users = max(args.users, args.concurrency)
    if args.instances > 1 and not args.database_url:
        parser.error("several instances need a shared --database-url (PostgreSQL)")
    return args


def main(argv: list[str] | None = None) -> int:
    import tempfile

    args = parse(argv)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with contextlib.ExitStack() as stack:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="passgate-load-")))
            env: dict[str, str] = {}
            where = "SQLite"
            if args.database_url:
                env["PASSGATE_DATABASE_URL"] = stack.enter_context(scratch_postgres(args.database_url))
                where = "PostgreSQL " + args.database_url.split("@")[-1]
            servers = stack.enter_context(run_instances(root, args.instances, workers=args.workers, env=env))
            tally = loop.run_until_complete(benchmark(servers, args))
    finally:
        loop.close()
    title = (
        f"{where}, {args.instances} instance(s) x {args.workers} worker(s), concurrency {args.concurrency}, "
        f"mix {args.mix} ({machine()})"
    )
    print(report(tally, title))
    return 1 if tally.errors() else 0


if __name__ == "__main__":
    sys.exit(main())
