"""Sign-in benchmark: Passgate against a tutorial-style passkey server in the same run, `/auth/me`
against a bare ASGI app, worker scaling, memory and start-up — the targets of issue 9, each printed
with PASS or MISS.

    .venv/bin/python benchmarks/login.py                      # everything, about 2 minutes
    .venv/bin/python benchmarks/login.py --no-scaling         # the same-run comparison only
    .venv/bin/python benchmarks/login.py --memory 100000      # RSS after 100,000 sign-ins
    .venv/bin/python benchmarks/login.py --seconds 4 --rounds 5
    .venv/bin/python benchmarks/login.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/login.py --levels 1,8,32      # + Passgate alone per concurrency level

What runs, in this order:

1. **Start-up**: `passgate serve` is started in a new data directory (cold: keys created, database
   migrated) and again on the same one (warm); the time from starting the process to its first answered
   request (polled every 10 ms) is printed for both.
2. **The same-run comparison**, at `--concurrency` (8) over keep-alive connections with an `Origin`
   header: `passgate serve` (one worker, SQLite), `benchmarks/tutorial_server.py` (FastAPI +
   py_webauthn + sqlite3 + an HMAC-signed cookie under uvicorn, one worker) and the bare ASGI app of
   `benchmarks/forward_auth.py` (answers 204 under the same uvicorn settings as `passgate serve`) run
   side by side. Each server gets `--users` accounts signed up over HTTP, each with its own ES256 key.
   Then `--rounds` rounds, each measuring in turn, after `--warmup` seconds, for `--seconds`:
   full sign-ins (begin, sign the challenge, finish: a session cookie) on the tutorial server then on
   Passgate; the signed-in GET (`/accounts/me`, `/auth/me`, and the bare app with the same request);
   full sign-ups on both. A connection owns its accounts, so a passkey's sign count always rises.
3. **Memory**: `--memory N` more sign-ins on the same Passgate, then the RSS of each worker process
   (`/proc/<pid>/status`), with the growth per 1,000 sign-ins over those N.
4. **Worker scaling**: sign-ins per second with `--workers 1` and `--workers 2`, alternating, on SQLite
   and on PostgreSQL (a scratch database on `--postgres-url`, skipped when unreachable), at
   `--scaling-concurrency`, connections spread evenly over the workers. Also printed: the load
   driver's CPU per sign-in and its share of the machine, and PostgreSQL's own CPU per sign-in (its
   backends serving the scratch database), because on a 2-core machine they all share the cores: two
   workers can reach at most `2s / (s + c + p)` of one worker (server `s`, driver `c`, PostgreSQL `p`
   CPU per sign-in); that ceiling is printed next to the ratio, and again scaled by how fast each of
   two CPU-bound processes runs while both run at once, against one alone (`busy_speed`, measured
   before each phase: a virtual machine's two vCPUs need not give two cores' work).

**Server CPU per operation** is the figure to trust: utime + stime of the server's process tree (every
thread) from /proc before and after a phase, divided by the operations completed. Medians over the
rounds; the ratios are the medians of each round's ratio (the two servers of a round ran seconds
apart). py_webauthn's bare `verify_authentication_response` and the bare ECDSA verify are timed in
process before and after, as the floor. The driver (`benchmarks/lean.py`) is one process on uvloop with
prebuilt request bytes and a lean signer; its own CPU per operation is printed with every phase.
Throughput and latency on a shared 2-core machine move with everything else that runs. Not part of the
test run (`tests/test_benchmarks.py` runs a tiny version of it).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gc
import hashlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    Server,
    database_env,
    machine,
    machine_cpu_seconds,
    new_event_loop,
    percentile,
    pids_cpu_seconds,
    rss_bytes,
    run_server,
    run_tutorial,
    tree_cpu_seconds,
)
from forward_auth import bare_server
from lean import (
    Account,
    Client,
    Endpoint,
    FastSigner,
    HttpError,
    balanced_clients,
    cookie_of,
)

from softkey import SoftAuthenticator, b64url_decode, b64url_encode

RP_ID = "localhost"

# issue 9's targets
SIGN_IN_US = 300.0
SIGN_IN_RATIO = 0.55  # Passgate / tutorial, server CPU per full sign-in
SIGN_UP_US = 400.0
ME_US = 45.0
ME_RATIO = 1.5  # Passgate /auth/me / bare ASGI 204
SCALING_RATIO = 1.5  # sign-ins per second, 2 workers / 1 worker
RSS_MB = 120.0
RSS_AFTER = 100_000  # sign-ins
STARTUP_SECONDS = 1.5
BUSY_CORES = 0.25  # other work above this during a phase is reported: the figures are not to be trusted


# --------------------------------------------------------------------------- the servers


@dataclass(frozen=True)
class Flavour:
    """The paths and body shapes of one kind of server, so one driver drives them all."""

    name: str
    signup_begin: str
    signup_finish: str
    signin_begin: str
    signin_finish: str
    me: str
    name_field: str  # the account name in the begin bodies
    cookie: bytes  # the session cookie's name
    signup_signs_in: bool  # does finishing a sign-up set the session cookie?
    me_status: int = 200


PASSGATE = Flavour(
    "passgate",
    "/auth/register/begin",
    "/auth/register/finish",
    "/auth/login/begin",
    "/auth/login/finish",
    "/auth/me",
    "user_name",
    b"passgate",
    True,
)
TUTORIAL = Flavour(
    "tutorial",
    "/signup/begin",
    "/signup/finish",
    "/signin/begin",
    "/signin/finish",
    "/accounts/me",
    "email",
    b"session",
    False,
)
BARE = Flavour("bare ASGI 204", "", "", "", "", "/auth/me", "", b"", False, me_status=204)


class Target:
    """One running server as the driver sees it: its flavour, connections, accounts and CPU clock."""

    def __init__(
        self,
        label: str,
        flavour: Flavour,
        port: int,
        origin: str,
        root_pid: int,
        worker_pids: Callable[[], list[int]],
        *,
        named: bool = False,
    ):
        self.label, self.flavour, self.named = label, flavour, named
        self.endpoint = Endpoint(port, origin)
        self.root_pid = root_pid
        self.worker_pids = worker_pids
        self.clients: list[Client] = []
        self.accounts: list[Account] = []
        self.distribution: dict[int, int] = {}  # connections per worker
        self.sign_ins = 0  # answered so far (for the memory figure)
        self.database_cpu: Callable[[], float] | None = None  # PostgreSQL backends' CPU seconds
        self._usernameless = self.endpoint.post(flavour.signin_begin, b"{}") if flavour.signin_begin else b""
        self._me: dict[int, tuple[bytes, bytes]] = {}

    @classmethod
    def of(cls, label: str, flavour: Flavour, server: Server, named: bool = False) -> Target:
        return cls(
            label, flavour, server.port, server.origin, server.process.pid, server.worker_pids, named=named
        )

    @property
    def origin(self) -> str:
        return self.endpoint.origin

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.root_pid)

    def begin_request(self, account: Account) -> bytes:
        if not self.named:
            return self._usernameless
        request = account.extra.get(self.label)
        if request is None:
            body = json.dumps({self.flavour.name_field: account.name}).encode()
            request = account.extra[self.label] = self.endpoint.post(self.flavour.signin_begin, body)
        return request

    def me_request(self, account: Account) -> bytes:
        cached = self._me.get(id(account))
        if cached is None or cached[0] is not account.cookie:
            cookie = self.cookie_name + b"=" + account.cookie
            cached = self._me[id(account)] = (account.cookie, self.endpoint.get(self.flavour.me, cookie))
        return cached[1]

    @property
    def cookie_name(self) -> bytes:
        # the bare app is sent Passgate's requests (its accounts' cookies), so the requests are alike
        return self.flavour.cookie or PASSGATE.cookie

    async def connect(self, count: int) -> None:
        """`count` keep-alive connections, spread evenly over the workers when there are several."""
        self.close()
        workers = self.worker_pids()
        if len(workers) > 1:
            probe = self.endpoint.get(self.flavour.me)
            self.clients, self.distribution = await balanced_clients(
                self.endpoint.port, count, workers, probe
            )
        else:
            self.clients = [Client(self.endpoint.port) for _ in range(count)]
            self.distribution = {workers[0]: count}

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.clients = []


# --------------------------------------------------------------------------- the operations

Operation = Callable[[Target, Client, Account], Awaitable[float]]


async def sign_in(target: Target, client: Client, account: Account) -> float:
    """begin, sign, finish: the two round trips' time (the signing is the browser's)."""
    started = time.perf_counter()
    head, body = await client.request(target.begin_request(account))
    begun = time.perf_counter()
    if head[9:12] != b"200":
        raise HttpError(f"{target.flavour.signin_begin} {head[9:12].decode()}: {body[:200]!r}")
    assert account.signer is not None
    assertion = account.signer.for_options(body)
    signed = time.perf_counter()
    head, body = await client.request(target.endpoint.post(target.flavour.signin_finish, assertion))
    finished = time.perf_counter()
    if head[9:12] != b"200":
        raise HttpError(f"{target.flavour.signin_finish} {head[9:12].decode()}: {body[:200]!r}")
    cookie = cookie_of(head, target.flavour.cookie)
    if not cookie:
        raise HttpError(f"{target.flavour.signin_finish}: no {target.flavour.cookie.decode()} cookie")
    account.cookie = cookie
    target.sign_ins += 1
    return (begun - started) + (finished - signed)


async def me(target: Target, client: Client, account: Account) -> float:
    started = time.perf_counter()
    head, body = await client.request(target.me_request(account))
    if int(head[9:12]) != target.flavour.me_status:
        raise HttpError(f"{target.flavour.me} {head[9:12].decode()}: {body[:200]!r}")
    return time.perf_counter() - started


async def sign_up(target: Target, client: Client, account: Account) -> float:
    """A new account and its first passkey (the client's key generation and CBOR are not timed)."""
    flavour = target.flavour
    started = time.perf_counter()
    body = json.dumps({flavour.name_field: account.name}).encode()
    head, options = await client.request(target.endpoint.post(flavour.signup_begin, body))
    begun = time.perf_counter()
    if head[9:12] != b"200":
        raise HttpError(f"{flavour.signup_begin} {head[9:12].decode()}: {options[:200]!r}")
    credential = account.authenticator.create(json.loads(options), origin=target.origin)
    finish = json.dumps(credential, separators=(",", ":")).encode()
    signed = time.perf_counter()
    head, answer = await client.request(target.endpoint.post(flavour.signup_finish, finish))
    finished = time.perf_counter()
    if head[9:12] != b"200":
        raise HttpError(f"{flavour.signup_finish} {head[9:12].decode()}: {answer[:200]!r}")
    if flavour.signup_signs_in:
        account.cookie = cookie_of(head, flavour.cookie) or b""
        if not account.cookie:
            raise HttpError(f"{flavour.signup_finish}: no {flavour.cookie.decode()} cookie")
    account.signer = FastSigner(account.authenticator.last_credential, target.origin, RP_ID)
    return (begun - started) + (finished - signed)


OPERATIONS: dict[str, Operation] = {"sign-in": sign_in, "me": me, "sign-up": sign_up}


def fresh_accounts(prefix: str) -> Callable[[int], Iterator[Account]]:
    """New accounts with names never used before (across calls too)."""
    run = uuid.uuid4().hex[:8]
    numbers = itertools.count()

    def accounts(index: int) -> Iterator[Account]:
        for number in numbers:
            yield Account(f"{prefix}-{run}-{number}@example.com")

    return accounts


def own_accounts(target: Target) -> Callable[[int], Iterator[Account]]:
    """Connection `index` cycles through its own share of the target's accounts."""
    count = len(target.clients)

    def accounts(index: int) -> Iterator[Account]:
        share = target.accounts[index::count]
        if not share:
            raise ValueError(f"{target.label}: fewer accounts than connections")
        return itertools.cycle(share)

    return accounts


# --------------------------------------------------------------------------- a measured phase


@dataclass
class Sample:
    label: str
    operation: str
    concurrency: int
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    database_cpu: float = 0.0  # PostgreSQL's backends, when measured
    machine_cpu: float = 0.0  # every core of the machine, whoever used it
    latencies: list[float] = field(default_factory=list)
    per_worker: dict[int, float] = field(default_factory=dict)  # CPU seconds per worker process
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

    @property
    def database_us(self) -> float:
        return self.database_cpu / self.ops * 1e6 if self.ops else float("nan")

    @property
    def client_share(self) -> float:
        """The driver's CPU seconds per wall second (1.0 = one core busy)."""
        return self.client_cpu / self.seconds if self.seconds else 0.0

    @property
    def others_share(self) -> float:
        """Cores busy with anything but this server, the driver and PostgreSQL's backends during the
        phase: other work on the machine, which inflates every figure."""
        others = self.machine_cpu - self.server_cpu - self.client_cpu - self.database_cpu
        return max(0.0, others / self.seconds) if self.seconds else 0.0


async def run_phase(
    target: Target,
    operation: str,
    seconds: float,
    accounts: Callable[[int], Iterator[Account]],
    *,
    max_ops: int = 0,
) -> Sample:
    """Every connection of `target` runs `operation` back to back until `seconds` have passed (or
    `max_ops` operations are done); the server's, the driver's and PostgreSQL's CPU around it."""
    call = OPERATIONS[operation]
    database_cpu = target.database_cpu
    sample = Sample(target.label, operation, len(target.clients))
    deadline = time.perf_counter() + seconds
    limit = max_ops or sys.maxsize

    async def worker(index: int) -> None:
        client = target.clients[index]
        for account in accounts(index):
            if time.perf_counter() >= deadline or sample.ops >= limit:
                return
            try:
                sample.latencies.append(await call(target, client, account))
                sample.ops += 1
            except (HttpError, OSError, ValueError) as exc:
                sample.errors += 1
                sample.first_error = sample.first_error or str(exc)
                client.close()
                await asyncio.sleep(0.01)

    workers = target.worker_pids()
    workers_before = pids_cpu_seconds(workers)
    database_before = database_cpu() if database_cpu else 0.0
    server_before = target.cpu_seconds()
    client_before = time.process_time()
    machine_before = machine_cpu_seconds()
    started = time.perf_counter()
    gc.disable()
    try:
        await asyncio.gather(*(worker(index) for index in range(len(target.clients))))
    finally:
        gc.enable()
    sample.seconds = time.perf_counter() - started
    sample.machine_cpu = machine_cpu_seconds() - machine_before
    sample.client_cpu = time.process_time() - client_before
    sample.server_cpu = target.cpu_seconds() - server_before
    if database_cpu:
        sample.database_cpu = database_cpu() - database_before
    workers_after = pids_cpu_seconds(workers)
    sample.per_worker = {pid: workers_after[pid] - workers_before[pid] for pid in workers}
    sample.latencies.sort()
    return sample


async def measure(
    target: Target,
    operation: str,
    args: argparse.Namespace,
    accounts: Callable[[int], Iterator[Account]] | None = None,
    profile: str = "",
) -> Sample:
    """A warm-up, then the measured phase (py-spy on it with `--profile`)."""
    accounts = accounts or (fresh_accounts("signup") if operation == "sign-up" else own_accounts(target))
    if args.warmup > 0:
        await run_phase(target, operation, args.warmup, accounts)
    profiler = _start_profiler(target.root_pid, args.profile, profile, args.seconds) if profile else None
    sample = await run_phase(target, operation, args.seconds, accounts)
    if profiler is not None:
        await asyncio.to_thread(profiler.wait)
    return sample


def _start_profiler(
    pid: int, profile_dir: Path | None, label: str, seconds: float
) -> subprocess.Popen[bytes] | None:
    """`py-spy record` of the server during the measured phase (its overhead lands in the CPU figures:
    compare profiles, not the numbers of a profiled run). Raw collapsed stacks, one file per phase."""
    if profile_dir is None:
        return None
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    profile_dir.mkdir(parents=True, exist_ok=True)
    command = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--threads", "--rate", "250"]
    command += ["--duration", str(max(1, int(seconds))), "--nonblocking", "--format", "raw"]
    path = profile_dir / f"{label}.txt"
    return subprocess.Popen([*command, "-o", str(path)], stdout=subprocess.DEVNULL)


async def prepare(target: Target, accounts: int, concurrency: int) -> None:
    """Open the connections, sign up `accounts` accounts, and sign each in once (a session cookie)."""
    await target.connect(concurrency)
    fresh = fresh_accounts(target.flavour.name)
    made: list[Account] = []

    async def worker(index: int) -> None:
        for account in itertools.islice(fresh(index), len(range(index, accounts, concurrency))):
            await sign_up(target, target.clients[index], account)
            made.append(account)

    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    target.accounts = made

    async def first_sign_ins(index: int) -> None:
        for account in made[index::concurrency]:
            await sign_in(target, target.clients[index], account)

    await asyncio.gather(*(first_sign_ins(index) for index in range(concurrency)))


# --------------------------------------------------------------------------- the in-process floor


def verify_floor(
    authenticator: SoftAuthenticator, origin: str, calls: int = 300, batches: int = 5
) -> tuple[float, float]:
    """Median CPU µs per call of py_webauthn's `verify_authentication_response` (the dict form, parsed
    inside, as a server calls it) and of the bare ECDSA verify under it, on one valid assertion of a
    registered credential, reused with its challenge."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from webauthn import verify_authentication_response

    challenge = os.urandom(32)
    options = {"challenge": b64url_encode(challenge), "rpId": RP_ID, "allowCredentials": []}
    stored = authenticator.last_credential
    count = stored.sign_count
    assertion = authenticator.get(options, origin=origin)
    stored.sign_count = count  # the server never saw this one
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
            expected_rp_id=RP_ID,
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


# --------------------------------------------------------------------------- the parts of the run


@dataclass
class Comparison:
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    verify_us: float = float("nan")
    ecdsa_us: float = float("nan")

    def add(self, sample: Sample) -> None:
        self.samples.setdefault((sample.label, sample.operation), []).append(sample)

    def median(self, label: str, operation: str, attribute: str = "server_us") -> float:
        found = self.samples.get((label, operation), [])
        return statistics.median(getattr(sample, attribute) for sample in found) if found else float("nan")

    def ratio(self, label: str, base: str, operation: str) -> tuple[float, list[float]]:
        """The median of the per-round ratios (round by round, the two ran seconds apart)."""
        ours, theirs = self.samples.get((label, operation), []), self.samples.get((base, operation), [])
        ratios = [a.server_us / b.server_us for a, b in zip(ours, theirs, strict=False) if a.ops and b.ops]
        return (statistics.median(ratios) if ratios else float("nan")), ratios


async def compare(tutorial: Target, passgate: Target, bare: Target, args: argparse.Namespace) -> Comparison:
    result = Comparison()
    plan = [
        ("sign-in", [tutorial, passgate]),
        ("me", [tutorial, passgate, bare]),
        ("sign-up", [tutorial, passgate]),
    ]
    for round_number in range(1, args.rounds + 1):
        for operation, targets in plan:
            for target in targets:
                progress(f"round {round_number}/{args.rounds}: {operation} on {target.label}")
                label = f"{target.flavour.name}-{operation}-round{round_number}"
                profile = label if target is passgate else ""
                result.add(await measure(target, operation, args, profile=profile))
    return result


@dataclass
class Memory:
    sign_ins: int  # in the memory phase
    total_sign_ins: int  # all the server answered
    rss_before: dict[int, int]
    rss_after: dict[int, int]
    checkpoints: list[tuple[int, int]]  # (sign-ins in the phase, largest worker RSS)
    errors: int

    @property
    def largest_mb(self) -> float:
        return max(self.rss_after.values()) / 2**20

    @property
    def growth_per_1000_kb(self) -> float:
        """RSS growth per 1,000 sign-ins between the first and the last checkpoint."""
        (first_ops, first_rss), (last_ops, last_rss) = self.checkpoints[0], self.checkpoints[-1]
        return (last_rss - first_rss) / 1024 / max(1, last_ops - first_ops) * 1000


async def memory(target: Target, count: int) -> Memory:
    workers = target.worker_pids()
    before = {pid: rss_bytes(pid) for pid in workers}
    checkpoints: list[tuple[int, int]] = []
    done = errors = 0
    steps = 5
    for step in range(steps):
        chunk = count * (step + 1) // steps - done
        progress(f"memory: {done + chunk:,} of {count:,} sign-ins")
        sample = await run_phase(target, "sign-in", 24 * 3600, own_accounts(target), max_ops=chunk)
        done += sample.ops
        errors += sample.errors
        checkpoints.append((done, max(rss_bytes(pid) for pid in workers)))
    after = {pid: rss_bytes(pid) for pid in workers}
    return Memory(done, target.sign_ins, before, after, checkpoints, errors)


@dataclass
class Scaling:
    database: str
    one: list[Sample]
    two: list[Sample]
    distribution: dict[int, int]
    together: float  # `busy_speed()` measured before the phase
    note: str = ""

    def median(self, workers: int, attribute: str) -> float:
        samples = self.one if workers == 1 else self.two
        return statistics.median(getattr(sample, attribute) for sample in samples)

    @property
    def ratio(self) -> float:
        return self.median(2, "throughput") / self.median(1, "throughput")

    @property
    def ceiling(self) -> float:
        """What two workers could reach, relative to one, when the machine's cores are shared by the
        workers (`s` CPU µs per sign-in), the driver (`c`) and PostgreSQL (`p`), from the one-worker
        run: cores / (s + c + p) sign-ins per second at most, and never more than twice one worker.
        With one worker saturated (1/s per second) on 2 cores that is 2s / (s + c + p)."""
        s = self.median(1, "server_us")
        c = self.median(1, "client_us")
        p = self.median(1, "database_us") if self.database != "SQLite" else 0.0
        cores = os.cpu_count() or 2
        return min(2.0, cores / ((s + c + p) * 1e-6) / self.median(1, "throughput"))

    @property
    def busy_ceiling(self) -> float:
        """`ceiling` when each process runs at `together` of its speed alone while every core is busy."""
        return min(2.0, self.ceiling * self.together)


BUSY_LOOP = "x = 0\nfor i in range(3_000_000):\n    x += i * i"


def busy_speed(rounds: int = 3) -> float:
    """How fast each of two CPU-bound processes runs while both run at once, against one alone: a
    pure-Python loop timed alone, then in two processes started together (median of `rounds`
    alternations). On a virtual machine two vCPUs may share one physical core's caches or pipeline,
    or the host may not give both at once; then two workers cannot reach twice one worker's work
    whatever Passgate does, and the ratio below is that machine's, not Passgate's."""
    command = [
        sys.executable,
        "-c",
        f"import time\nt = time.perf_counter()\n{BUSY_LOOP}\nprint(time.perf_counter() - t)",
    ]

    def timed(count: int) -> list[float]:
        processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(count)]
        return [float(process.communicate()[0]) for process in processes]

    ratios = []
    for _ in range(rounds):
        alone = timed(1)[0]
        ratios.append(alone / statistics.mean(timed(2)))
    return statistics.median(ratios)


def postgres_reachable(url: str) -> str:
    """'' when a connection to `url` works, else why not."""
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return ""
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def backend_cpu(admin_url: str, database_url: str) -> Callable[[], float]:
    """CPU seconds of the PostgreSQL backends connected to the database of `database_url` (a local
    server: /proc). Backends that appear later are counted from 0, ones that left keep their last value."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    seen: dict[int, float] = {}

    def read() -> float:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchall()
        seen.update({pid: cpu for pid, cpu in pids_cpu_seconds([int(row[0]) for row in rows]).items() if cpu})
        return sum(seen.values())

    return read


async def scaling(args: argparse.Namespace, database: str, url: str) -> Scaling:
    with contextlib.ExitStack() as stack:
        envs = [database_env(stack, url, args.keep) for _ in (1, 2)]
        progress(f"scaling on {database}: starting passgate serve --workers 1 and --workers 2")
        servers = enter_together(
            stack,
            *(
                run_server(workers=workers, env=env, keep_data=args.keep)
                for workers, env in zip((1, 2), envs, strict=True)
            ),
        )
        targets = [
            Target.of(f"passgate w{workers}", PASSGATE, server, named=args.named)
            for workers, server in zip((1, 2), servers, strict=True)
        ]
        for target, env in zip(targets, envs, strict=True):
            if database != "SQLite":
                target.database_cpu = backend_cpu(url, env["PASSGATE_DATABASE_URL"])
            await prepare(target, max(args.users, args.scaling_concurrency), args.scaling_concurrency)
        progress(f"scaling on {database}: two busy processes against one (a pure-Python loop)")
        together = busy_speed()
        one: list[Sample] = []
        two: list[Sample] = []
        for round_number in range(1, args.scaling_rounds + 1):
            for target, samples in zip(targets, (one, two), strict=True):
                progress(f"scaling on {database}, round {round_number}/{args.scaling_rounds}: {target.label}")
                samples.append(await measure(target, "sign-in", args))
        for target in targets:
            target.close()
        return Scaling(database, one, two, targets[1].distribution, together)


def startup(args: argparse.Namespace) -> tuple[float, float]:
    """Seconds from starting `passgate serve` to its first answer: in a new data directory (cold),
    then again on the same one (warm)."""
    root = Path(tempfile.mkdtemp(prefix="passgate-startup-"))
    try:
        with contextlib.ExitStack() as stack:
            env = database_env(stack, args.database_url, False)
            with run_server(env=env, root=root) as server:
                cold = server.startup_seconds
            with run_server(env=env, root=root) as server:
                warm = server.startup_seconds
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return cold, warm


async def levels_table(target: Target, args: argparse.Namespace) -> list[Sample]:
    """Passgate alone per concurrency level (the old default table)."""
    samples = []
    for concurrency in args.levels:
        await target.connect(concurrency)
        for operation in ("sign-in", "me"):
            progress(f"Passgate alone: {operation} at concurrency {concurrency}")
            sample = await measure(target, operation, args, profile=f"{operation}-c{concurrency}")
            samples.append(sample)
    return samples


# --------------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _fmt(value: float, spec: str = ",.0f") -> str:
    return "—" if value != value else format(value, spec)  # NaN → —


def report_phases(samples: Sequence[Sample], title: str) -> None:
    print(f"\n{title}")
    print(
        f"  {'operation':<9} {'server':<14} {'conc':>4} {'rounds':>6} {'ops/s':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'server µs/op':>12} {'driver µs/op':>12} {'other load':>10} {'errors':>6}"
    )
    grouped: dict[tuple[str, str, int], list[Sample]] = {}
    for sample in samples:
        grouped.setdefault((sample.operation, sample.label, sample.concurrency), []).append(sample)
    for (operation, label, concurrency), group in grouped.items():
        latencies = sorted(latency for sample in group for latency in sample.latencies)
        print(
            f"  {operation:<9} {label:<14} {concurrency:>4} {len(group):>6} "
            f"{statistics.median(s.throughput for s in group):>7,.0f} "
            f"{percentile(latencies, 0.5) * 1e3:>7.2f} {percentile(latencies, 0.99) * 1e3:>7.2f} "
            f"{_fmt(statistics.median(s.server_us for s in group)):>12} "
            f"{_fmt(statistics.median(s.client_us for s in group)):>12} "
            f"{statistics.median(s.others_share for s in group):>10.2f} {sum(s.errors for s in group):>6}"
        )


def report(
    args: argparse.Namespace,
    comparison: Comparison,
    start: tuple[float, float] | None,
    mem: Memory | None,
    scalings: list[Scaling],
    skipped: list[str],
    levels: list[Sample],
    load: tuple[float, float],
) -> list[tuple[str, str, str, bool]]:
    """Prints everything; returns the target rows (what, measured, target, met)."""
    print(f"\n# Passgate sign-in benchmark — {machine()}")
    database = args.database_url.split("@")[-1] if args.database_url else "SQLite"
    print(
        f"# load average {load[0]:.2f} at the start, {load[1]:.2f} at the end; concurrency "
        f"{args.concurrency}, Passgate {args.workers} worker(s) on {database}, "
        f"{'named' if args.named else 'usernameless'} sign-in; {args.rounds} round(s) of {args.seconds:g} s "
        f"per phase after {args.warmup:g} s warm-up, interleaved"
    )
    all_samples = [sample for group in comparison.samples.values() for sample in group]
    report_phases(all_samples, "Same run, server by server (medians over the rounds):")
    print(
        f"  floor, in process: py_webauthn verify_authentication_response {comparison.verify_us:.0f} µs, "
        f"bare ECDSA P-256 verify {comparison.ecdsa_us:.0f} µs CPU per call"
    )
    rows: list[tuple[str, str, str, bool]] = []
    sign_in_us = comparison.median("passgate", "sign-in")
    tutorial_us = comparison.median("tutorial", "sign-in")
    sign_in_ratio, sign_in_rounds = comparison.ratio("passgate", "tutorial", "sign-in")
    me_us = comparison.median("passgate", "me")
    me_ratio, me_rounds = comparison.ratio("passgate", "bare ASGI 204", "me")
    tutorial_me_us = comparison.median("tutorial", "me")
    sign_up_us = comparison.median("passgate", "sign-up")
    print(
        f"  full sign-in: Passgate {_fmt(sign_in_us)} µs, tutorial {_fmt(tutorial_us)} µs → "
        f"{sign_in_ratio:.2f}x (rounds: {', '.join(f'{r:.2f}' for r in sign_in_rounds)}); "
        f"Passgate = {sign_in_us / comparison.verify_us:.1f}x the verify call"
    )
    print(
        f"  signed-in GET: Passgate /auth/me {_fmt(me_us, ',.1f')} µs, bare ASGI 204 "
        f"{_fmt(comparison.median('bare ASGI 204', 'me'), ',.1f')} µs → {me_ratio:.2f}x "
        f"(rounds: {', '.join(f'{r:.2f}' for r in me_rounds)}); tutorial /accounts/me "
        f"{_fmt(tutorial_me_us, ',.1f')} µs"
    )
    print(
        f"  full sign-up: Passgate {_fmt(sign_up_us)} µs (signs in too), tutorial "
        f"{_fmt(comparison.median('tutorial', 'sign-up'))} µs (no session)"
    )
    rows.append(
        (
            "full sign-in, Passgate server CPU",
            f"{_fmt(sign_in_us)} µs",
            f"≤ {SIGN_IN_US:.0f} µs",
            sign_in_us <= SIGN_IN_US,
        )
    )
    rows.append(
        (
            "full sign-in, Passgate / tutorial",
            f"{sign_in_ratio:.2f}x",
            f"≤ {SIGN_IN_RATIO}x",
            sign_in_ratio <= SIGN_IN_RATIO,
        )
    )
    rows.append(
        (
            "full sign-up, Passgate server CPU",
            f"{_fmt(sign_up_us)} µs",
            f"≤ {SIGN_UP_US:.0f} µs",
            sign_up_us <= SIGN_UP_US,
        )
    )
    rows.append(
        ("/auth/me, Passgate server CPU", f"{_fmt(me_us, ',.1f')} µs", f"≤ {ME_US:.0f} µs", me_us <= ME_US)
    )
    rows.append(("/auth/me / bare ASGI 204", f"{me_ratio:.2f}x", f"≤ {ME_RATIO}x", me_ratio <= ME_RATIO))

    if levels:
        report_phases(levels, "Passgate alone, per concurrency level:")

    if mem is not None:
        print(
            f"\nMemory: {mem.sign_ins:,} sign-ins in the memory phase, {mem.total_sign_ins:,} in all "
            "on this server"
        )
        for pid in mem.rss_after:
            print(
                f"  worker {pid}: RSS {mem.rss_before[pid] / 2**20:.1f} MB before → "
                f"{mem.rss_after[pid] / 2**20:.1f} MB after"
            )
        print(
            "  largest worker's RSS at each fifth: "
            + ", ".join(f"{ops:,}: {rss / 2**20:.1f} MB" for ops, rss in mem.checkpoints)
        )
        growth = mem.growth_per_1000_kb
        projected = mem.largest_mb + growth / 1024 * max(0, RSS_AFTER - mem.total_sign_ins) / 1000
        print(
            f"  growth {growth:,.1f} KB per 1,000 sign-ins between the first and last fifth"
            + (
                f"; a straight line to {RSS_AFTER:,} sign-ins would reach {projected:.1f} MB (bounded caches "
                f"stop growing when full: measure with --memory {RSS_AFTER})"
                if mem.total_sign_ins < RSS_AFTER
                else ""
            )
        )
        short = f" (the target is after {RSS_AFTER:,})" if mem.total_sign_ins < RSS_AFTER else ""
        rows.append(
            (
                f"RSS per worker after {mem.total_sign_ins:,} sign-ins{short}",
                f"{mem.largest_mb:.1f} MB",
                f"≤ {RSS_MB:.0f} MB",
                mem.largest_mb <= RSS_MB,
            )
        )

    if start is not None:
        cold, warm = start
        print(
            f"\nStart-up: `passgate serve` answered its first request {cold:.2f} s after start "
            f"(new data directory), {warm:.2f} s (existing one)"
        )
        rows.append(
            (
                "passgate serve, first answer after start (new data dir)",
                f"{cold:.2f} s",
                f"≤ {STARTUP_SECONDS} s",
                cold <= STARTUP_SECONDS,
            )
        )
        rows.append(
            (
                "passgate serve, first answer after start (existing data)",
                f"{warm:.2f} s",
                f"≤ {STARTUP_SECONDS} s",
                warm <= STARTUP_SECONDS,
            )
        )

    for result in scalings:
        print(
            f"\nWorker scaling on {result.database}, concurrency {args.scaling_concurrency}, "
            f"{len(result.one)} round(s) each, alternating:"
        )
        print(
            f"  {'workers':>7} {'sign-ins/s':>10} {'server µs':>9} {'driver µs':>9} {'driver CPU share':>16} "
            f"{'PostgreSQL µs':>13} {'CPU per worker (s/s)':>22} {'other load':>10} {'errors':>6}"
        )
        for workers, samples in ((1, result.one), (2, result.two)):
            shares = [
                statistics.median(sample.per_worker.get(pid, 0.0) / sample.seconds for sample in samples)
                for pid in samples[0].per_worker
            ]
            database_us = (
                result.median(workers, "database_us") if result.database != "SQLite" else float("nan")
            )
            print(
                f"  {workers:>7} {result.median(workers, 'throughput'):>10,.0f} "
                f"{_fmt(result.median(workers, 'server_us')):>9} "
                f"{_fmt(result.median(workers, 'client_us')):>9} "
                f"{result.median(workers, 'client_share'):>15.0%} {_fmt(database_us):>13} "
                f"{' / '.join(f'{share:.2f}' for share in shares):>22} "
                f"{result.median(workers, 'others_share'):>10.2f} {sum(s.errors for s in samples):>6}"
            )
        spread = " / ".join(str(count) for count in result.distribution.values())
        print(
            f"  2 workers / 1 worker: {result.ratio:.2f}x (connections per worker {spread}); the ceiling "
            f"on this machine, 2s/(s+c{'+p' if result.database != 'SQLite' else ''}) from the one-worker "
            f"run: {result.ceiling:.2f}x"
        )
        print(
            f"  two CPU-bound processes at once each ran at {result.together:.2f}x the speed of one alone "
            f"on this machine just before (a pure-Python loop): with that, the ceiling is "
            f"{result.busy_ceiling:.2f}x"
        )
        rows.append(
            (
                f"sign-ins/s, 2 workers / 1 worker, {result.database}",
                f"{result.ratio:.2f}x",
                f"≥ {SCALING_RATIO}x",
                result.ratio >= SCALING_RATIO,
            )
        )
    for note in skipped:
        print(f"\n{note}")

    errors = [
        sample
        for sample in [*all_samples, *levels, *(s for r in scalings for s in (*r.one, *r.two))]
        if sample.errors
    ]
    for sample in errors:
        print(f"errors: {sample.label} {sample.operation}: {sample.errors}, first: {sample.first_error}")

    every = [*all_samples, *levels, *(s for r in scalings for s in (*r.one, *r.two))]
    busiest = max((sample.others_share for sample in every), default=0.0)
    if busiest > BUSY_CORES:
        print(
            f"\nNOTE: other work kept up to {busiest:.2f} cores busy during the phases ('other load' above): "
            "every figure is inflated and the scaling ratio meaningless. Run again on a quiet machine."
        )

    print("\nTargets (issue 9):")
    width = max(len(row[0]) for row in rows)
    for what, measured, target, met in rows:
        print(f"  {what:<{width}}  {measured:>10}  {target:>9}  {verdict(met)}")
    if args.workers != 1 or args.database_url:
        print("  (the targets are for one worker on SQLite; this run used another set-up)")
    return rows


# --------------------------------------------------------------------------- main


def enter_together(
    stack: contextlib.ExitStack, *managers: contextlib.AbstractContextManager[Any]
) -> list[Any]:
    """Enter the context managers (servers starting up) at the same time, each in a thread; every one
    that started is stopped by `stack`, also when another failed."""
    with ThreadPoolExecutor(len(managers)) as pool:
        futures = [pool.submit(manager.__enter__) for manager in managers]
        concurrent.futures.wait(futures)
    failed = None
    values = []
    for manager, future in zip(managers, futures, strict=True):
        if future.exception() is None:
            stack.push(manager.__exit__)
            values.append(future.result())
        else:
            failed = failed or future.exception()
    if failed is not None:
        raise failed
    return values


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def main_run(args: argparse.Namespace) -> int:
    load_start = os.getloadavg()[0]
    start = None
    if args.startup:
        progress("start-up: passgate serve in a new data directory, then again")
        start = startup(args)
    levels: list[Sample] = []
    with contextlib.ExitStack() as stack:
        env = database_env(stack, args.database_url, args.keep)
        progress("starting passgate serve, the tutorial server and the bare ASGI app")
        passgate_server, tutorial_server, (bare_port, bare_pid) = enter_together(
            stack,
            run_server(workers=args.workers, env=env, keep_data=args.keep),
            run_tutorial(keep_data=args.keep),
            bare_server(),
        )
        passgate = Target.of("passgate", PASSGATE, passgate_server, named=args.named)
        if "PASSGATE_DATABASE_URL" in env and args.database_url.startswith(("postgresql://", "postgres://")):
            passgate.database_cpu = backend_cpu(args.database_url, env["PASSGATE_DATABASE_URL"])
        tutorial = Target.of("tutorial", TUTORIAL, tutorial_server, named=args.named)
        bare = Target("bare ASGI 204", BARE, bare_port, passgate.origin, bare_pid, lambda: [bare_pid])
        for target in (tutorial, passgate):
            progress(f"{target.label}: signing up {args.users} accounts")
            await prepare(target, args.users, args.concurrency)
        await bare.connect(args.concurrency)
        bare.accounts = passgate.accounts  # the same requests, cookies included
        calls = 300 if args.seconds >= 1 else 30
        floor_before = verify_floor(passgate.accounts[0].authenticator, passgate.origin, calls)
        comparison = await compare(tutorial, passgate, bare, args)
        floor_after = verify_floor(passgate.accounts[0].authenticator, passgate.origin, calls)
        comparison.verify_us = min(floor_before[0], floor_after[0])
        comparison.ecdsa_us = min(floor_before[1], floor_after[1])
        mem = await memory(passgate, args.memory) if args.memory > 0 else None
        if args.levels:
            levels = await levels_table(passgate, args)
        for target in (tutorial, passgate, bare):
            target.close()
    scalings: list[Scaling] = []
    skipped: list[str] = []
    if args.scaling:
        scalings.append(await scaling(args, "SQLite", ""))
        why = postgres_reachable(args.postgres_url)
        if why:
            skipped.append(f"Worker scaling on PostgreSQL skipped: {args.postgres_url} unreachable ({why})")
        else:
            scalings.append(await scaling(args, "PostgreSQL", args.postgres_url))
    rows = report(args, comparison, start, mem, scalings, skipped, levels, (load_start, os.getloadavg()[0]))
    errors = any(
        sample.errors
        for sample in [
            *(s for group in comparison.samples.values() for s in group),
            *levels,
            *(s for r in scalings for s in (*r.one, *r.two)),
        ]
    ) or (mem is not None and mem.errors > 0)
    if errors:
        return 1
    return 1 if args.strict and not all(row[3] for row in rows) else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=64, help="accounts per server (at least --concurrency)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections in the comparison")
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each phase")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the comparison")
    parser.add_argument("--workers", type=int, default=1, help="`passgate serve --workers` in the comparison")
    parser.add_argument(
        "--database-url",
        default="",
        help="Passgate's database in the comparison: SQLite URL, or a PostgreSQL server URL (a scratch "
        "database is created on it and dropped)",
    )
    parser.add_argument(
        "--named", action="store_true", help="sign in with a user name instead of usernameless"
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=2000,
        metavar="N",
        help=f"sign-ins before reading RSS (0: skip; the target is for {RSS_AFTER:,})",
    )
    parser.add_argument("--no-startup", dest="startup", action="store_false", help="skip the start-up timing")
    parser.add_argument(
        "--scaling", action=argparse.BooleanOptionalAction, default=True, help="worker scaling"
    )
    parser.add_argument("--scaling-rounds", type=int, default=2)
    parser.add_argument("--scaling-concurrency", type=int, default=16)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PASSGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL server for the scaling run (a scratch database is created on it and dropped)",
    )
    parser.add_argument(
        "--levels", default="", help="also Passgate alone at these concurrency levels, e.g. 1,8,32"
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' data directories and logs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record Passgate's measured phases with py-spy into this folder",
    )
    args = parser.parse_args(argv)
    args.levels = [int(item) for item in str(args.levels).split(",") if item.strip()]
    args.users = max(args.users, args.concurrency, *args.levels)
    if args.database_url.startswith(("postgresql://", "postgres://")) and "--postgres-url" not in (
        argv or sys.argv
    ):
        args.postgres_url = args.database_url
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main_run(args))
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
