"""OpenID Connect benchmark: whole authorization code flows against a real `passgate serve`.

    .venv/bin/python benchmarks/oidc.py                    # SQLite, one worker, concurrency 1 and 8
    .venv/bin/python benchmarks/oidc.py --seconds 10 --levels 1,8,32
    .venv/bin/python benchmarks/oidc.py --database-url postgresql://postgres@127.0.0.1:5432/test

It starts `passgate serve` in a fresh data directory, registers two trusted confidential clients with
`passgate client add` (one signing its ID tokens RS256, one ES256) and `--users` accounts with the test
suite's software authenticator (each keeps its session cookie), then runs, per client and concurrency
level, whole code flows as a signed-in browser and its relying party would:

1. `GET /oidc/authorize` (code, PKCE S256, `state`, `nonce`, scope `openid profile`) with the session
   cookie: the session is read, the request validated, a code stored → 302 to the redirect URI;
2. `POST /oidc/token` (`client_secret_basic`, the code and its verifier): the code consumed, tokens
   stored, the ID token signed;
3. `GET /oidc/userinfo` with the access token.

Per level it prints throughput, p50/p99 latency of a whole flow and the **server CPU per flow**: utime +
stime of the server process tree from /proc, before and after, divided by the flows completed. In the
same run it times, in process, signing one ID token with joserfc (what authlib's OpenID grant calls) with
an RS256 (RSA 2048) and an ES256 (P-256) key as `passgate.oidc.keys` makes them: the floor under a flow,
and prints the ratio. With a PostgreSQL `--database-url`, a scratch database is created for the run and
dropped after it (the CPU figures then leave out PostgreSQL's own processes). Throughput on a shared
2-core machine is noisy (the client shares the cores); trust the CPU figures. Not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from common import (
    COOKIE,
    Connection,
    HttpError,
    Server,
    database_env,
    machine,
    new_event_loop,
    percentile,
    register,
    run_server,
)

from servers import passgate_command

REDIRECT = "https://rp.localhost/callback"
FORM = "application/x-www-form-urlencoded"
ALGORITHMS = ("RS256", "ES256")


@dataclass
class App:
    """A registered client: its id, its `Authorization: Basic` header, the ID token algorithm."""

    client_id: str
    basic: str
    alg: str


@dataclass
class Level:
    alg: str
    concurrency: int
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def server_us(self) -> float:
        return self.server_cpu / self.ops * 1e6 if self.ops else float("nan")


# --------------------------------------------------------------------------- setting up


def add_client(server: Server, env: dict[str, str], alg: str) -> App:
    """`passgate client add` on the running server's data directory and database (usable at once)."""
    client_id = f"bench-{alg.lower()}"
    command = ["client", "add", client_id, "--redirect-uri", REDIRECT, "--trusted"]
    if alg == "ES256":
        command.append("--es256")
    child_env = {"PASSGATE_DATA_DIR": str(server.data_dir), **env}
    result = subprocess.run(
        passgate_command(*command),
        env={**_clean_env(), **child_env},
        cwd=server.data_dir.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    secret = result.stdout.split("store it now): ")[1].split()[0]
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return App(client_id, f"Basic {basic}", alg)


def _clean_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}


# --------------------------------------------------------------------------- one code flow


def code_flow(app: App) -> Callable[[Connection, str], Any]:
    verifier = secrets.token_urlsafe(48)
    challenge = create_s256_code_challenge(verifier)

    async def flow(connection: Connection, cookie: str) -> float:
        started = time.perf_counter()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": app.client_id,
                "redirect_uri": REDIRECT,
                "scope": "openid profile",
                "state": secrets.token_urlsafe(8),
                "nonce": secrets.token_urlsafe(8),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        answer = await connection.request(
            "GET", f"/oidc/authorize?{query}", headers={"Cookie": f"{COOKIE}={cookie}"}
        )
        location = answer.headers.get("location", "")
        codes = parse_qs(urlsplit(location).query).get("code")
        if answer.status != 302 or not codes:
            raise HttpError(f"authorize {answer.status}: {location or answer.body[:200]!r}")
        body = urlencode(
            {
                "grant_type": "authorization_code",
                "code": codes[0],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            }
        ).encode()
        tokens = await connection.request(
            "POST", "/oidc/token", body, headers={"Authorization": app.basic}, content_type=FORM
        )
        if tokens.status != 200:
            raise HttpError(f"token {tokens.status}: {tokens.body[:200]!r}")
        issued = tokens.json()
        if "id_token" not in issued:
            raise HttpError("token: no id_token")
        info = await connection.request(
            "GET", "/oidc/userinfo", headers={"Authorization": f"Bearer {issued['access_token']}"}
        )
        if info.status != 200:
            raise HttpError(f"userinfo {info.status}: {info.body[:200]!r}")
        return time.perf_counter() - started

    return flow


async def run_level(
    server: Server, cookies: list[str], app: App, concurrency: int, seconds: float, warmup: float
) -> Level:
    flow = code_flow(app)
    connections = [Connection("127.0.0.1", server.port, origin=server.origin) for _ in range(concurrency)]
    shares = [cookies[index::concurrency] for index in range(concurrency)]

    async def phase(duration: float) -> Level:
        level = Level(app.alg, concurrency)
        deadline = time.perf_counter() + duration

        async def worker(connection: Connection, mine: list[str]) -> None:
            for cookie in itertools.cycle(mine):
                if time.perf_counter() >= deadline:
                    return
                try:
                    level.latencies.append(await flow(connection, cookie))
                    level.ops += 1
                except (HttpError, OSError, ValueError, KeyError) as exc:
                    level.errors += 1
                    level.first_error = level.first_error or str(exc)
                    await connection.close()

        cpu_before, started = server.cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(worker(c, mine) for c, mine in zip(connections, shares, strict=True)))
        level.seconds = time.perf_counter() - started
        level.server_cpu = server.cpu_seconds() - cpu_before
        level.latencies.sort()
        return level

    try:
        if warmup > 0:
            await phase(warmup)
        return await phase(seconds)
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))


# --------------------------------------------------------------------------- the in-process floor


def signing_floor(calls: int = 200, batches: int = 7) -> dict[str, float]:
    """Median CPU µs to sign one ID token (typical claims) with joserfc, per algorithm, with keys as
    `passgate.oidc.keys.generate` makes them."""
    from joserfc import jwt

    from passgate.oidc.keys import SigningKeys, generate

    keys = SigningKeys(generate())
    now = int(time.time())
    claims = {
        "iss": "http://localhost:8000",
        "sub": secrets.token_hex(16),
        "aud": "bench-rs256",
        "azp": "bench-rs256",
        "iat": now,
        "exp": now + 600,
        "auth_time": now,
        "nonce": secrets.token_urlsafe(8),
        "at_hash": secrets.token_urlsafe(16),
        "amr": ["swk", "user", "mfa"],
        "acr": "urn:passgate:acr:passkey-uv",
        "sid": secrets.token_hex(16),
        "name": "Bench User",
        "preferred_username": "bench-user",
    }
    floors = {}
    for alg in ALGORITHMS:
        key = keys.key_for(alg)
        header = {"alg": alg, "kid": str(key.kid), "typ": "JWT"}

        def sign(key: Any = key, header: dict[str, str] = header) -> None:
            jwt.encode(header, claims, key, [header["alg"]])

        sign()
        samples = []
        for _ in range(batches):
            started = time.thread_time()
            for _ in range(calls):
                sign()
            samples.append((time.thread_time() - started) / calls * 1e6)
        floors[alg] = statistics.median(samples)
    return floors


# --------------------------------------------------------------------------- report


def report(levels: list[Level], floors: dict[str, float], args: argparse.Namespace) -> None:
    print()
    print(
        f"{'ID token':<8} {'conc':>4} {'flows':>6} {'flows/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'server µs/flow':>14} {'x signing':>9} {'errors':>6}"
    )
    for level in levels:
        throughput = level.ops / level.seconds if level.seconds else 0.0
        print(
            f"{level.alg:<8} {level.concurrency:>4} {level.ops:>6} {throughput:>7.0f} "
            f"{percentile(level.latencies, 0.5) * 1e3:>7.2f} {percentile(level.latencies, 0.99) * 1e3:>7.2f} "
            f"{level.server_us:>14.0f} {level.server_us / floors[level.alg]:>9.1f} {level.errors:>6}"
        )
    print()
    for alg in ALGORITHMS:
        print(f"in-process ID token signing with joserfc, {alg}: {floors[alg]:.0f} µs CPU per token")
    for level in levels:
        if level.errors:
            print(f"{level.alg} c={level.concurrency}: {level.errors} errors, first: {level.first_error}")
    print(
        f"({machine()}; {args.users} users, {args.seconds:g} s per level after {args.warmup:g} s warm-up, "
        f"{args.workers} worker(s), "
        f"{'database ' + args.database_url.split('@')[-1] if args.database_url else 'SQLite'})"
    )


async def benchmark(server: Server, env: dict[str, str], args: argparse.Namespace) -> bool:
    print(f"passgate serve on {server.origin}: registering clients and {args.users} users…", file=sys.stderr)
    apps = [add_client(server, env, alg) for alg in ALGORITHMS]
    cookies = [user.cookie for user in await register(server, args.users)]
    before = signing_floor()
    levels = []
    for app in apps:
        for concurrency in args.levels:
            print(f"{app.alg} code flows at concurrency {concurrency}…", file=sys.stderr)
            levels.append(await run_level(server, cookies, app, concurrency, args.seconds, args.warmup))
    after = signing_floor()
    report(levels, {alg: min(before[alg], after[alg]) for alg in ALGORITHMS}, args)
    return not any(level.errors for level in levels)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=32, help="signed-in accounts (at least the top level)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each level")
    parser.add_argument("--workers", type=int, default=1, help="`passgate serve --workers`")
    parser.add_argument(
        "--database-url",
        default="",
        help="SQLite URL, or a PostgreSQL server URL (a scratch database is created on it and dropped)",
    )
    parser.add_argument("--levels", default="1,8", help="comma-separated concurrency levels")
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory and log")
    args = parser.parse_args(argv)
    args.levels = [int(item) for item in str(args.levels).split(",") if item.strip()]
    args.users = max(args.users, max(args.levels))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with contextlib.ExitStack() as stack:
            env = database_env(stack, args.database_url, args.keep)
            server = stack.enter_context(run_server(workers=args.workers, env=env, keep_data=args.keep))
            ok = loop.run_until_complete(benchmark(server, env, args))
    finally:
        loop.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
