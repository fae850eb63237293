"""Sign-in benchmark: full passkey sign-ins and `GET /auth/me` against a real `passgate serve`.

    .venv/bin/python benchmarks/login.py                    # SQLite, one worker, 1/8/32 concurrent
    .venv/bin/python benchmarks/login.py --seconds 10 --workers 2
    .venv/bin/python benchmarks/login.py --database-url postgresql://postgres@127.0.0.1:5432/test

It starts `passgate serve` in a fresh data directory, registers `--users` accounts with the test suite's
software authenticator (real ES256 keys), then runs, per concurrency level, full usernameless sign-ins
(`POST /auth/login/begin`, sign the challenge, `POST /auth/login/finish` with the assertion: the
challenge row is consumed, the credential record updated, a session row written and a cookie issued)
and `GET /auth/me` with a valid session cookie, over keep-alive connections with an `Origin` header.

Per level it prints throughput, p50/p99 latency (the two round trips of a sign-in, without the
client's signing time) and the **server CPU per operation**: utime + stime of the server process
tree from /proc, before and after, divided by the operations completed. In the same run it times
py_webauthn's `verify_authentication_response` in-process on one valid assertion of a registered
credential (the floor of a sign-in), and the bare ECDSA verify under it, and prints the ratios.
With a PostgreSQL `--database-url`, a scratch database is created on that server for the run and dropped
after it (the server CPU figures then leave out PostgreSQL's own processes). Throughput on this shared
2-core machine is noisy (the client shares the cores); trust the CPU figures and ratios. Not part of
the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    COOKIE,
    Connection,
    HttpError,
    Server,
    User,
    database_env,
    machine,
    new_event_loop,
    percentile,
    register,
    run_server,
)

from softkey import b64url_decode, b64url_encode

TARGET_US = 300.0


@dataclass
class Level:
    operation: str
    concurrency: int
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def server_us(self) -> float:
        return self.server_cpu / self.ops * 1e6 if self.ops else float("nan")

    @property
    def client_us(self) -> float:
        return self.client_cpu / self.ops * 1e6 if self.ops else float("nan")


Operation = Callable[[Connection, User], Awaitable[float]]


# --------------------------------------------------------------------------- the operations


def sign_in(origin: str, named: bool) -> Operation:
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


# --------------------------------------------------------------------------- running a level


async def _phase(
    server: Server,
    connections: list[Connection],
    shares: list[list[User]],
    operation: Operation,
    seconds: float,
) -> Level:
    level = Level(operation="", concurrency=len(connections))
    deadline = time.perf_counter() + seconds

    async def worker(connection: Connection, users: list[User]) -> None:
        for user in itertools.cycle(users):
            if time.perf_counter() >= deadline:
                return
            try:
                level.latencies.append(await operation(connection, user))
                level.ops += 1
            except (HttpError, OSError, ValueError) as exc:
                level.errors += 1
                level.first_error = level.first_error or str(exc)
                await connection.close()

    cpu_before, client_before, started = server.cpu_seconds(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(c, users) for c, users in zip(connections, shares, strict=True)))
    level.seconds = time.perf_counter() - started
    level.server_cpu = server.cpu_seconds() - cpu_before
    level.client_cpu = time.process_time() - client_before
    level.latencies.sort()
    return level


async def run_level(
    server: Server,
    users: list[User],
    name: str,
    operation: Operation,
    concurrency: int,
    seconds: float,
    warmup: float,
    profile_dir: Path | None = None,
) -> Level:
    """`concurrency` connections, each with its own users (a passkey is never used by two at once:
    its sign count must rise in the order the server sees the assertions)."""
    connections = [Connection("127.0.0.1", server.port, origin=server.origin) for _ in range(concurrency)]
    shares = [users[index::concurrency] for index in range(concurrency)]
    try:
        if warmup > 0:
            await _phase(server, connections, shares, operation, warmup)
        profiler = _start_profiler(server, profile_dir, f"{name}-c{concurrency}", seconds)
        level = await _phase(server, connections, shares, operation, seconds)
        if profiler is not None:
            await asyncio.to_thread(profiler.wait)
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
    level.operation, level.concurrency = name, concurrency
    return level


def _start_profiler(
    server: Server, profile_dir: Path | None, label: str, seconds: float
) -> subprocess.Popen[bytes] | None:
    """`py-spy record` of the server during the measured phase (its overhead lands in the CPU figures:
    compare profiles, not the numbers of a profiled run). Collapsed stacks, one file per level."""
    if profile_dir is None:
        return None
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    profile_dir.mkdir(parents=True, exist_ok=True)
    command = [
        py_spy,
        "record",
        "--pid",
        str(server.process.pid),
        "--subprocesses",
        "--threads",
        "--rate",
        "250",
    ]
    command += ["--duration", str(max(1, int(seconds))), "--nonblocking"]
    path = profile_dir / f"{label}.txt"
    return subprocess.Popen([*command, "--format", "raw", "-o", str(path)], stdout=subprocess.DEVNULL)


# --------------------------------------------------------------------------- the in-process floor


def verify_floor(user: User, origin: str, calls: int = 400, batches: int = 7) -> tuple[float, float]:
    """Median CPU µs per call of py_webauthn's `verify_authentication_response` (the dict form, parsed
    inside, as the server calls it) and of the bare ECDSA verify under it, on one valid assertion of a
    registered credential, reused with its challenge."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from webauthn import verify_authentication_response

    challenge = os.urandom(32)
    options = {"challenge": b64url_encode(challenge), "rpId": "localhost", "allowCredentials": []}
    assertion = user.authenticator.get(options, origin=origin)
    stored = user.authenticator.last_credential
    public_key_cose = stored.public_key_cose
    public_key = stored.private_key.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    response = assertion["response"]
    signature = b64url_decode(response["signature"])
    signed = (
        b64url_decode(response["authenticatorData"])
        + hashlib.sha256(b64url_decode(response["clientDataJSON"])).digest()
    )

    def verify() -> None:
        verify_authentication_response(
            credential=assertion,
            expected_challenge=challenge,
            expected_rp_id="localhost",
            expected_origin=origin,
            credential_public_key=public_key_cose,
            credential_current_sign_count=0,
            require_user_verification=False,
        )

    def bare() -> None:
        public_key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))

    def median_us(call: Callable[[], None]) -> float:
        call()
        samples = []
        for _ in range(batches):
            started = time.thread_time()
            for _ in range(calls):
                call()
            samples.append((time.thread_time() - started) / calls * 1e6)
        return statistics.median(samples)

    return median_us(verify), median_us(bare)


# --------------------------------------------------------------------------- report


def report(levels: list[Level], verify_us: float, ecdsa_us: float, args: argparse.Namespace) -> None:
    print()
    print(
        f"{'operation':<10} {'conc':>4} {'ops':>7} {'ops/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'server µs/op':>12} {'x verify':>8} {'client µs/op':>12} {'errors':>6}"
    )
    for level in levels:
        print(
            f"{level.operation:<10} {level.concurrency:>4} {level.ops:>7} {level.throughput:>7.0f} "
            f"{percentile(level.latencies, 0.5) * 1e3:>7.2f} {percentile(level.latencies, 0.99) * 1e3:>7.2f} "
            f"{level.server_us:>12.0f} {level.server_us / verify_us:>8.2f} {level.client_us:>12.0f} "
            f"{level.errors:>6}"
        )
    print()
    print(f"in-process py_webauthn verify_authentication_response (ES256): {verify_us:.0f} µs CPU per call")
    print(f"in-process bare ECDSA P-256 verify (cryptography):             {ecdsa_us:.0f} µs CPU per call")
    sign_ins = [level for level in levels if level.operation == "sign-in" and level.ops]
    if sign_ins:
        best = min(level.server_us for level in sign_ins)
        worst = max(level.server_us for level in sign_ins)
        verdict = "met" if worst <= TARGET_US else "MISSED"
        print(
            f"sign-in server CPU: {best:.0f}-{worst:.0f} µs per sign-in = {best / verify_us:.1f}-"
            f"{worst / verify_us:.1f}x the verify call; target ≤ {TARGET_US:.0f} µs: {verdict}"
        )
    for level in levels:
        if level.errors:
            print(
                f"{level.operation} c={level.concurrency}: {level.errors} errors, first: {level.first_error}"
            )
    print(
        f"({machine()}; {args.users} users, {args.seconds:g} s per level after {args.warmup:g} s warm-up, "
        f"{args.workers} worker(s), {'named' if args.named else 'usernameless'} sign-in, "
        f"{'database ' + args.database_url.split('@')[-1] if args.database_url else 'SQLite'})"
    )


async def benchmark(server: Server, args: argparse.Namespace) -> bool:
    print(f"passgate serve on {server.origin}: registering {args.users} users…", file=sys.stderr)
    users = await register(server, args.users)
    verify_before = verify_floor(users[0], server.origin)
    levels: list[Level] = []
    operation = sign_in(server.origin, args.named)
    for concurrency in args.levels:
        print(f"sign-in at concurrency {concurrency}…", file=sys.stderr)
        levels.append(
            await run_level(
                server, users, "sign-in", operation, concurrency, args.seconds, args.warmup, args.profile
            )
        )
    for concurrency in args.levels:
        print(f"GET /auth/me at concurrency {concurrency}…", file=sys.stderr)
        levels.append(
            await run_level(server, users, "me", me, concurrency, args.seconds, args.warmup, args.profile)
        )
    verify_after = verify_floor(users[0], server.origin)
    verify_us = min(verify_before[0], verify_after[0])
    ecdsa_us = min(verify_before[1], verify_after[1])
    report(levels, verify_us, ecdsa_us, args)
    return not any(level.errors for level in levels)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=64, help="accounts to register (at least the top level)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each level")
    parser.add_argument("--workers", type=int, default=1, help="`passgate serve --workers`")
    parser.add_argument(
        "--database-url",
        default="",
        help="SQLite URL, or a PostgreSQL server URL (a scratch database is created on it and dropped)",
    )
    parser.add_argument("--levels", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument(
        "--named", action="store_true", help="sign in with a user name instead of usernameless"
    )
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory and log")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record each level with py-spy (collapsed stacks) into this folder",
    )
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
            ok = loop.run_until_complete(benchmark(server, args))
    finally:
        loop.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
