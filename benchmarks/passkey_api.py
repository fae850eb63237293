"""Passkey-API benchmark: server CPU per login and per transaction finalize of the passkey API for other
backends, against the first-party sign-in on the same server and the RS256 signature measured in the
same run — issue 11's speed target, printed with PASS or MISS.

    .venv/bin/python benchmarks/passkey_api.py                     # about a minute on a quiet machine
    .venv/bin/python benchmarks/passkey_api.py --seconds 4 --rounds 5
    .venv/bin/python benchmarks/passkey_api.py --key-bits 4096      # the tenant's signing key size
    .venv/bin/python benchmarks/passkey_api.py --named             # login/initialize with user_id
    .venv/bin/python benchmarks/passkey_api.py --profile /tmp/profiles   # + py-spy raw stacks per flow

It starts `passgate serve` (one worker, SQLite, a fresh data directory, a rate limit no run reaches),
makes a tenant with `passgate tenant add --no-api-key` and its key with `passgate api-key add --tenant`,
registers `--users` users through `registration/initialize` + `registration/finalize` (as a backend does,
with the `apiKey` header and no `Origin`, each user with its own ES256 passkey at the tenant's origin)
and as many first-party accounts through `/auth/register/*` (a browser on the server's origin). One
token is verified through the tenant's JWKS, which also gives the key size the signature is timed with.

Then `--rounds` rounds, each running in turn, at `--concurrency` keep-alive connections, three flows:

- **first-party sign-in**: `POST /auth/login/begin` (usernameless) + `POST /auth/login/finish` (a
  session cookie), what `benchmarks/login.py` measures;
- **API login**: `POST …/login/initialize` (discoverable, or with `user_id` under `--named`) +
  `POST …/login/finalize` (a token);
- **API transaction**: `POST …/transaction/initialize` (a new `transaction_id` every time, a small JSON
  `transaction_data`) + `POST …/transaction/finalize` (a token with `trans`).

Each flow is measured in three phases, after `--warmup` seconds of whole flows:

1. **whole**: begin and finish back to back for `--seconds` (server CPU per whole flow, flows per second);
2. **begin only**: only the first request, for half of `--seconds`, each connection keeping the options;
3. **finish only**: the second request on every challenge of phase 2, in order (the driver signs each
   assertion just before sending it: its CPU is the driver's, not the server's).

Phases 2 and 3 separate the two requests without subtracting anything; their sum should be close to
phase 1. **Server CPU per operation** is utime + stime of the server's process tree (every thread) from
/proc before and after a phase, divided by the operations completed; medians over the rounds. The
RS256 signature is one `joserfc.jwt.encode` of a token shaped like the API's (the same header and
claims) with an RSA key of the tenant's size, timed in this process (thread CPU time) before and after
the rounds, the lower median kept.

The target (issue 11): API finalize (login, and transaction) ≤ the first-party whole sign-in + one RS256
signature. Everything shares a 2-core machine with the driver: the "other load" column is the CPU used
by anything else during each phase; above a quarter of a core the figures are inflated. Not part of the
test run (`tests/test_benchmarks.py` runs a tiny version of it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import Server, machine, machine_cpu_seconds, new_event_loop, percentile, run_server
from lean import Account, Client, FastSigner, HttpError, b64, cookie_of, status_of
from login import BUSY_CORES, PASSGATE, RP_ID, Sample, Target, _start_profiler, prepare, progress, verdict

from servers import passgate_command

APP_ORIGIN = "http://localhost:3000"  # the tenant's site, where its users' browsers run
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
FIRST_PARTY = "first-party sign-in"
API_LOGIN = "API login"
API_TRANSACTION = "API transaction"
FLOWS = (FIRST_PARTY, API_LOGIN, API_TRANSACTION)
WHOLE, BEGIN, FINISH = "whole", "begin only", "finish only"
PHASES = (WHOLE, BEGIN, FINISH)
IBAN = "DE89370400440532013000"  # a transfer's payee, in every transaction's data


# --------------------------------------------------------------------------- the tenant


@dataclass(frozen=True)
class Tenant:
    id: str
    api_key: str


def passgate_cli(server: Server, *arguments: str) -> str:
    """A `passgate` command on the running server's data directory (its stdout)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    env["PASSGATE_DATA_DIR"] = str(server.data_dir)
    result = subprocess.run(
        passgate_command(*arguments),
        env=env,
        cwd=server.data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"passgate {' '.join(arguments)}: {result.stdout}{result.stderr}")
    return result.stdout


def add_tenant(server: Server, key_bits: int) -> Tenant:
    """`passgate tenant add --no-api-key`, then `passgate api-key add --tenant` (the key, shown once,
    is the output's last line)."""
    added = passgate_cli(
        server,
        *("tenant", "add", "Bench", "--rp-id", RP_ID, "--origin", APP_ORIGIN),
        *("--key-bits", str(key_bits), "--no-api-key"),
    )
    found = re.search(f"Tenant ({UUID}) created", added)
    if found is None:
        raise RuntimeError(f"passgate tenant add said: {added}")
    key = passgate_cli(server, "api-key", "add", "--tenant", found.group(1), "--name", "bench")
    return Tenant(found.group(1), key.strip().splitlines()[-1].strip())


class ApiEndpoint:
    """Requests of a backend to one tenant: the `apiKey` header on every call (as Passgate's and Hanko's
    SDKs send it; the routes that do not need it ignore it), no `Origin` (not a browser)."""

    def __init__(self, port: int, tenant: Tenant):
        self.base = f"/passkeys/{tenant.id}".encode()
        self.fixed = f"HTTP/1.1\r\nHost: localhost:{port}\r\napiKey: {tenant.api_key}\r\n".encode("latin-1")

    def post(self, path: str, body: bytes) -> bytes:
        return (
            b"POST "
            + self.base
            + path.encode()
            + b" "
            + self.fixed
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    def get(self, path: str) -> bytes:
        return b"GET " + self.base + path.encode() + b" " + self.fixed + b"\r\n"


async def register_api_users(
    api: ApiEndpoint, clients: list[Client], count: int, prefix: str = "bench"
) -> list[Account]:
    """`count` users of the tenant, each with its own ES256 passkey, registered as a backend does it."""
    run = uuid.uuid4().hex[:8]
    made: list[Account] = []

    async def worker(index: int) -> None:
        client = clients[index]
        for number in range(index, count, len(clients)):
            account = Account(f"{prefix}-{run}-{number}")
            body = json.dumps({"user_id": account.name, "username": f"{account.name}@example.com"}).encode()
            head, options = await client.request(api.post("/registration/initialize", body))
            expect(head, options, "registration/initialize")
            credential = account.authenticator.create(json.loads(options), origin=APP_ORIGIN)
            finish = json.dumps(credential, separators=(",", ":")).encode()
            head, answer = await client.request(api.post("/registration/finalize", finish))
            expect(head, answer, "registration/finalize")
            account.signer = FastSigner(account.authenticator.last_credential, APP_ORIGIN, RP_ID)
            made.append(account)

    await asyncio.gather(*(worker(index) for index in range(len(clients))))
    return made


def expect(head: bytes, body: bytes, what: str, status: int = 200) -> None:
    if status_of(head) != status:
        raise HttpError(f"{what} {status_of(head)}: {body[:300]!r}")


async def token_key_bits(client: Client, api: ApiEndpoint, token: str) -> int:
    """Verify one finalize token through the tenant's JWKS (RS256, its `kid`); the key's size in bits."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    head, body = await client.request(api.get("/.well-known/jwks.json"))
    expect(head, body, ".well-known/jwks.json")
    jwks = json.loads(body)
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    (key,) = [key for key in jwks["keys"] if key["kid"] == decoded.header["kid"]]
    modulus = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
    return int.from_bytes(modulus, "big").bit_length()


# --------------------------------------------------------------------------- the flows


@dataclass
class Flow:
    """Two requests: `begin(account)` → options, `finish(account, options)` → the request to send
    (signed here), `finished(head, body, account)` raises unless the answer is the flow's success."""

    name: str
    begin_path: str
    finish_path: str
    accounts: list[Account]
    begin: Callable[[Account], bytes]
    finish: Callable[[Account, bytes], bytes]
    finished: Callable[[bytes, bytes, Account], None]


def first_party_flow(target: Target) -> Flow:
    def finish(account: Account, options: bytes) -> bytes:
        assert account.signer is not None
        return target.endpoint.post(PASSGATE.signin_finish, account.signer.for_options(options))

    def finished(head: bytes, body: bytes, account: Account) -> None:
        expect(head, body, PASSGATE.signin_finish)
        cookie = cookie_of(head, PASSGATE.cookie)
        if not cookie:
            raise HttpError(f"{PASSGATE.signin_finish}: no session cookie")
        account.cookie = cookie

    return Flow(
        FIRST_PARTY,
        PASSGATE.signin_begin,
        PASSGATE.signin_finish,
        target.accounts,
        target.begin_request,
        finish,
        finished,
    )


def _token_answer(path: str) -> Callable[[bytes, bytes, Account], None]:
    def finished(head: bytes, body: bytes, account: Account) -> None:
        expect(head, body, path)
        if b'"token"' not in body[:16]:
            raise HttpError(f"{path}: no token in {body[:200]!r}")

    return finished


def api_login_flow(api: ApiEndpoint, accounts: list[Account], named: bool) -> Flow:
    discoverable = api.post("/login/initialize", b"{}")

    def begin(account: Account) -> bytes:
        if not named:
            return discoverable
        request = account.extra.get("api-login")
        if request is None:
            body = json.dumps({"user_id": account.name}).encode()
            request = account.extra["api-login"] = api.post("/login/initialize", body)
        return request

    def finish(account: Account, options: bytes) -> bytes:
        assert account.signer is not None
        return api.post("/login/finalize", account.signer.for_options(options))

    return Flow(
        API_LOGIN,
        "login/initialize",
        "login/finalize",
        accounts,
        begin,
        finish,
        _token_answer("login/finalize"),
    )


def api_transaction_flow(api: ApiEndpoint, accounts: list[Account]) -> Flow:
    run = uuid.uuid4().hex[:8]
    numbers = itertools.count()

    def begin(account: Account) -> bytes:
        number = next(numbers)
        body = {
            "user_id": account.name,
            "transaction_id": f"tx-{run}-{number}",
            "transaction_data": {"amount": number % 1000 + 1, "currency": "EUR", "to": IBAN},
        }
        return api.post("/transaction/initialize", json.dumps(body, separators=(",", ":")).encode())

    def finish(account: Account, options: bytes) -> bytes:
        assert account.signer is not None
        return api.post("/transaction/finalize", account.signer.for_options(options))

    return Flow(
        API_TRANSACTION,
        "transaction/initialize",
        "transaction/finalize",
        accounts,
        begin,
        finish,
        _token_answer("transaction/finalize"),
    )


# --------------------------------------------------------------------------- measured phases

Worker = Callable[[int, Client, Sample], Awaitable[None]]


async def measured(server: Server, clients: list[Client], flow: Flow, phase: str, worker: Worker) -> Sample:
    """Run `worker` on every connection; the server's, this driver's and the machine's CPU around it."""
    sample = Sample(flow.name, phase, len(clients))
    server_before = server.cpu_seconds()
    client_before = time.process_time()
    machine_before = machine_cpu_seconds()
    started = time.perf_counter()
    gc.disable()
    try:
        await asyncio.gather(*(worker(index, client, sample) for index, client in enumerate(clients)))
    finally:
        gc.enable()
    sample.seconds = time.perf_counter() - started
    sample.machine_cpu = machine_cpu_seconds() - machine_before
    sample.client_cpu = time.process_time() - client_before
    sample.server_cpu = server.cpu_seconds() - server_before
    sample.latencies.sort()
    return sample


def _failed(sample: Sample, client: Client, exc: Exception) -> Awaitable[None]:
    sample.errors += 1
    sample.first_error = sample.first_error or str(exc)
    client.close()
    return asyncio.sleep(0.01)


def shares(flow: Flow, count: int) -> list[list[Account]]:
    """Connection `index` owns every `count`-th account, so a passkey's sign count always rises."""
    owned = [flow.accounts[index::count] for index in range(count)]
    if not all(owned):
        raise ValueError(f"{flow.name}: fewer accounts than connections")
    return owned


async def whole(server: Server, clients: list[Client], flow: Flow, seconds: float) -> Sample:
    deadline = time.perf_counter() + seconds
    owned = shares(flow, len(clients))

    async def worker(index: int, client: Client, sample: Sample) -> None:
        for account in itertools.cycle(owned[index]):
            if time.perf_counter() >= deadline:
                return
            try:
                started = time.perf_counter()
                head, options = await client.request(flow.begin(account))
                begun = time.perf_counter()
                expect(head, options, flow.begin_path)
                request = flow.finish(account, options)
                signed = time.perf_counter()
                head, body = await client.request(request)
                finished = time.perf_counter()
                flow.finished(head, body, account)
                sample.latencies.append((begun - started) + (finished - signed))
                sample.ops += 1
            except (HttpError, OSError, ValueError) as exc:
                await _failed(sample, client, exc)

    return await measured(server, clients, flow, WHOLE, worker)


async def split(server: Server, clients: list[Client], flow: Flow, seconds: float) -> tuple[Sample, Sample]:
    """Only begins for `seconds`, keeping each connection's options; then only finishes, of all of them."""
    deadline = time.perf_counter() + seconds
    owned = shares(flow, len(clients))
    pending: list[list[tuple[Account, bytes]]] = [[] for _ in clients]

    async def begins(index: int, client: Client, sample: Sample) -> None:
        for account in itertools.cycle(owned[index]):
            if time.perf_counter() >= deadline:
                return
            try:
                started = time.perf_counter()
                head, options = await client.request(flow.begin(account))
                sample.latencies.append(time.perf_counter() - started)
                expect(head, options, flow.begin_path)
                pending[index].append((account, options))
                sample.ops += 1
            except (HttpError, OSError, ValueError) as exc:
                await _failed(sample, client, exc)

    async def finishes(index: int, client: Client, sample: Sample) -> None:
        for account, options in pending[index]:
            try:
                request = flow.finish(account, options)
                started = time.perf_counter()
                head, body = await client.request(request)
                sample.latencies.append(time.perf_counter() - started)
                flow.finished(head, body, account)
                sample.ops += 1
            except (HttpError, OSError, ValueError) as exc:
                await _failed(sample, client, exc)

    begun = await measured(server, clients, flow, BEGIN, begins)
    finished = await measured(server, clients, flow, FINISH, finishes)
    return begun, finished


# --------------------------------------------------------------------------- the signature, in process


def api_like_token(bits: int, tenant_id: str) -> Callable[[], str]:
    """Signs a token as the API's (`issue_token`: the same header and claims, `trans` included) with a new
    RSA key of `bits`, through `joserfc.jwt.encode` as the server does."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    kid = str(uuid.uuid4())
    key = RSAKey.generate_key(bits, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)
    header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
    issued = int(time.time())
    claims = {
        "iss": f"http://localhost:8000/passkeys/{tenant_id}",
        "sub": f"bench-{uuid.uuid4().hex[:8]}-0",
        "aud": [RP_ID],
        "cred": b64(os.urandom(16)).decode(),
        "iat": issued,
        "exp": issued + 300,
        "auth_time": issued,
        "amr": ["swk", "user", "mfa"],
        "uv": True,
        "trans": f"tx-{uuid.uuid4().hex[:8]}-0",
    }
    return lambda: jwt.encode(header, claims, key)


def signing_cost(sign: Callable[[], str], bits: int, quick: bool) -> float:
    """Median thread-CPU µs of one `sign()` over a few batches."""
    batches, calls = (3, 20) if quick else (7, max(10, int(200 * (2048 / bits) ** 3)))
    sign()
    samples = []
    for _ in range(batches):
        started = time.thread_time()
        for _ in range(calls):
            sign()
        samples.append((time.thread_time() - started) / calls * 1e6)
    return statistics.median(samples)


# --------------------------------------------------------------------------- the run


@dataclass
class Results:
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    sign_us: float = float("nan")
    key_bits: int = 0

    def add(self, sample: Sample) -> None:
        self.samples.setdefault((sample.label, sample.operation), []).append(sample)

    def every(self) -> list[Sample]:
        return [sample for group in self.samples.values() for sample in group]

    def server_us(self, flow: str, phase: str) -> float:
        found = [sample.server_us for sample in self.samples.get((flow, phase), []) if sample.ops]
        return statistics.median(found) if found else float("nan")

    def rounds(self, flow: str, phase: str) -> list[float]:
        return [sample.server_us for sample in self.samples.get((flow, phase), [])]


async def run(args: argparse.Namespace) -> Results:
    results = Results()
    with run_server(workers=1, keep_data=args.keep) as server:
        progress(f"passgate serve on {server.origin}: passgate tenant add, passgate api-key add")
        tenant = add_tenant(server, args.key_bits)
        target = Target.of("passgate", PASSGATE, server)
        progress(f"first party: signing up {args.users} accounts")
        await prepare(target, args.users, args.concurrency)
        clients = target.clients
        api = ApiEndpoint(server.port, tenant)
        progress(f"API: registering {args.users} users through registration/initialize + finalize")
        api_accounts = await register_api_users(api, clients, args.users)
        flows = [
            first_party_flow(target),
            api_login_flow(api, api_accounts, args.named),
            api_transaction_flow(api, api_accounts),
        ]
        # one login to check the token through the JWKS and learn the key's size
        account = api_accounts[0]
        head, options = await clients[0].request(flows[1].begin(account))
        expect(head, options, "login/initialize")
        head, body = await clients[0].request(flows[1].finish(account, options))
        flows[1].finished(head, body, account)
        results.key_bits = await token_key_bits(clients[0], api, json.loads(body)["token"])

        quick = args.seconds < 1
        progress(f"timing the RS256 signature in process (RSA-{results.key_bits})")
        sign = api_like_token(results.key_bits, tenant.id)
        before = signing_cost(sign, results.key_bits, quick)
        for round_number in range(1, args.rounds + 1):
            for flow in flows:
                progress(f"round {round_number}/{args.rounds}: {flow.name}")
                if args.warmup > 0:
                    await whole(server, clients, flow, args.warmup)
                label = f"{flow.name.replace(' ', '-')}-round{round_number}"
                profiler = _start_profiler(server.process.pid, args.profile, label, args.seconds)
                results.add(await whole(server, clients, flow, args.seconds))
                if profiler is not None:
                    await asyncio.to_thread(profiler.wait)
                for sample in await split(server, clients, flow, args.seconds / 2):
                    results.add(sample)
        after = signing_cost(sign, results.key_bits, quick)
        results.sign_us = min(before, after)
        target.close()
    return results


# --------------------------------------------------------------------------- report


def _us(value: float) -> str:
    return "—" if value != value else f"{value:,.0f}"  # NaN → —


def report(args: argparse.Namespace, results: Results, load: tuple[float, float]) -> list[bool]:
    print(f"\n# Passgate passkey-API benchmark — {machine()}")
    print(
        f"# load average {load[0]:.2f} at the start, {load[1]:.2f} at the end (a shared machine: other "
        f"work inflates every figure); one worker on SQLite; concurrency {args.concurrency}; "
        f"{args.users} users per side; {args.rounds} round(s) of {args.seconds:g} s whole flows after "
        f"{args.warmup:g} s warm-up, then {args.seconds / 2:g} s of begins and their finishes, interleaved; "
        f"API login {'with user_id' if args.named else 'discoverable'}"
    )
    print(
        "\nServer CPU per operation (medians over the rounds). whole = begin + finish back to back; "
        "begin only / finish only = each request in a phase of its own (finish only: every challenge of "
        "the begin phase)."
    )
    print(
        f"  {'flow':<19} {'phase':<11} {'requests':<44} {'ops/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'server µs/op':>12} {'driver µs/op':>12} {'other load':>10} {'errors':>6}"
    )
    for flow in FLOWS:
        for phase in PHASES:
            group = results.samples.get((flow, phase), [])
            if not group:
                continue
            begin, finish = {
                FIRST_PARTY: ("/auth/login/begin", "/auth/login/finish"),
                API_LOGIN: ("login/initialize", "login/finalize"),
                API_TRANSACTION: ("transaction/initialize", "transaction/finalize"),
            }[flow]
            requests = {WHOLE: f"{begin} + {finish}", BEGIN: begin, FINISH: finish}[phase]
            latencies = sorted(latency for sample in group for latency in sample.latencies)
            print(
                f"  {flow:<19} {phase:<11} {requests:<44} "
                f"{statistics.median(s.throughput for s in group):>7,.0f} "
                f"{percentile(latencies, 0.5) * 1e3:>7.2f} {percentile(latencies, 0.99) * 1e3:>7.2f} "
                f"{_us(results.server_us(flow, phase)):>12} "
                f"{_us(statistics.median(s.client_us for s in group)):>12} "
                f"{statistics.median(s.others_share for s in group):>10.2f} {sum(s.errors for s in group):>6}"
            )
    sign = results.sign_us
    print(
        f"\nRS256 signature, in process: {_us(sign)} µs CPU per token (joserfc, RSA-{results.key_bits}, the "
        "API's header and claims)"
    )
    first_party = results.server_us(FIRST_PARTY, WHOLE)
    first_finish = results.server_us(FIRST_PARTY, FINISH)
    budget = first_party + sign
    for flow in (API_LOGIN, API_TRANSACTION):
        whole_us, finish_us = results.server_us(flow, WHOLE), results.server_us(flow, FINISH)
        begin_us = results.server_us(flow, BEGIN)
        print(
            f"  {flow}: finalize {_us(finish_us)} µs ({_us(finish_us - sign)} µs without the signature; "
            f"first-party finish {_us(first_finish)} µs), initialize {_us(begin_us)} µs, whole "
            f"{_us(whole_us)} µs = {whole_us / budget:.2f}x first-party sign-in + signature"
        )
    rows: list[tuple[str, str, str, bool]] = []
    for flow, what in ((API_LOGIN, "login/finalize"), (API_TRANSACTION, "transaction/finalize")):
        finish_us = results.server_us(flow, FINISH)
        per_round = [
            finish / (signin + sign)
            for finish, signin in zip(
                results.rounds(flow, FINISH), results.rounds(FIRST_PARTY, WHOLE), strict=False
            )
        ]
        print(
            f"  {what} / (first-party sign-in + signature), round by round: "
            + ", ".join(f"{ratio:.2f}" for ratio in per_round)
        )
        rows.append(
            (
                f"{what} server CPU ≤ first-party sign-in + RS256 signature",
                f"{_us(finish_us)} µs",
                f"≤ {_us(first_party)} + {_us(sign)} = {_us(budget)} µs",
                finish_us <= budget,
            )
        )

    every = results.every()
    for sample in every:
        if sample.errors:
            print(f"errors: {sample.label} {sample.operation}: {sample.errors}, first: {sample.first_error}")
    busiest = max((sample.others_share for sample in every), default=0.0)
    if busiest > BUSY_CORES:
        print(
            f"\nNOTE: other work kept up to {busiest:.2f} cores busy during the phases ('other load' above): "
            "every figure is inflated. Run again on a quieter machine for figures to quote."
        )
    print("\nTarget (issue 11):")
    width = max(len(row[0]) for row in rows)
    for what, measured_text, target_text, met in rows:
        print(f"  {what:<{width}}  {measured_text:>10}  {target_text}  {verdict(met)}")
    return [row[3] for row in rows]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=64, help="API users and first-party accounts, each")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of whole flows per round")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each flow")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--key-bits", type=int, default=2048, choices=(2048, 3072, 4096))
    parser.add_argument("--named", action="store_true", help="API login/initialize with user_id")
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory and log")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record the server during the whole-flow phases with py-spy into this folder",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    args.users = max(args.users, args.concurrency)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    load_start = os.getloadavg()[0]
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        results = loop.run_until_complete(run(args))
    finally:
        loop.close()
    met = report(args, results, (load_start, os.getloadavg()[0]))
    if any(sample.errors for sample in results.every()):
        return 1
    return 1 if args.strict and not all(met) else 0


if __name__ == "__main__":
    sys.exit(main())
