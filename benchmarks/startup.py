"""Start-up and memory: how soon `passgate serve` answers, how much it holds, and whether it grows.

    .venv/bin/python benchmarks/startup.py                   # start-up, fresh and existing data dir
    .venv/bin/python benchmarks/startup.py --importtime      # plus the slowest imports of a start
    .venv/bin/python benchmarks/startup.py --signins 100000  # plus RSS while signing in over HTTP
    .venv/bin/python benchmarks/startup.py --runs 0 --in-process 6000 --forward-auth --tracemalloc

Start-up: the seconds from spawning `passgate serve` (SQLite; `--workers N`, default 1) to the first
answered `GET /auth/me` (its 401 is an answer), on a fresh data directory (keys created, every
migration run) and again on the same directory (nothing to create, schema at head); the server's CPU
seconds by then (steadier than the wall clock on a loaded machine) and its RSS (with workers, the
largest process). `--importtime` starts it three more times under `python -X importtime` and prints,
per module the least of its three times, the 20 largest cumulative imports, the 20 top-level packages
and the 20 Passgate modules costing the most import time of their own.

Memory: `--signins N` signs in N times over HTTP against a real server, spread over `--users`
accounts, each new session cookie used once on `GET /auth/me` (so every per-token and per-session
memory sees a new key each time), and prints the server's RSS along the way. `--in-process N` does
the same against the ASGI app in this process (no HTTP; faster; `--forward-auth` also sends each new
cookie through the gate); with `--tracemalloc` it prints what is still referenced after a collection
that grew the most between the first and the last checkpoint. Numbers are noisy on a shared machine:
the load average is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import COOKIE, Connection, User, machine, new_event_loop, register, tree_cpu_seconds, tree_pids

from servers import free_port, passgate_command, server_env, stop_process
from softkey import SoftAuthenticator

ORIGIN_HOST = "localhost"
WORKERS = [1]  # `--workers`


# --------------------------------------------------------------------------- a server process


@contextlib.contextmanager
def spawn(
    data_dir: Path, *, python_flags: tuple[str, ...] = ()
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`passgate serve` on a free port with `data_dir`, stdout/stderr to files beside it."""
    port = free_port()
    env = server_env(data_dir, port, "http", {"PASSGATE_RATE_LIMIT": "1000000/second"})
    command = passgate_command(
        "serve", "--port", str(port), "--workers", str(WORKERS[0]), "--log-level", "warning"
    )
    command[1:1] = python_flags
    root = data_dir.parent
    with (root / "stdout.log").open("wb") as out, (root / "stderr.log").open("wb") as err:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=err, start_new_session=True)
    try:
        yield process, port
    finally:
        stop_process(process)


def first_answer(process: subprocess.Popen[bytes], port: int, started: float, timeout: float = 60.0) -> float:
    """Seconds from `started` to the first HTTP answer of `GET /auth/me`."""
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"passgate serve exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/me", timeout=2)
        except urllib.error.HTTPError:
            return time.perf_counter() - started
        except OSError:
            time.sleep(0.01)
            continue
        return time.perf_counter() - started
    raise RuntimeError(f"passgate serve did not answer within {timeout} s")


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mb(pid: int) -> float:
    """The RSS of the server's biggest process: its only one, or its largest worker (`--workers`)."""
    if WORKERS[0] > 1:  # every worker started and built its app
        deadline = time.monotonic() + 30
        while len(tree_pids(pid)) <= WORKERS[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
    sizes = []
    for child in tree_pids(pid):
        with contextlib.suppress(OSError):
            sizes.append(rss_mb(child))
    return max(sizes)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --------------------------------------------------------------------------- start-up


def measure_startup(runs: int) -> None:
    """Wall-clock seconds to the first answer, the server's CPU seconds by then (steadier than the
    wall clock on a loaded machine), and its RSS."""
    figures: dict[str, list[tuple[float, float, float]]] = {"fresh data dir   ": [], "existing data dir": []}
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(prefix="passgate-startup-"))
        try:
            for label in figures:
                started = time.perf_counter()
                with spawn(root / "data") as (process, port):
                    seconds = first_answer(process, port, started)
                    cpu = tree_cpu_seconds(process.pid)
                    figures[label].append((seconds, cpu, tree_rss_mb(process.pid)))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    for label, rows in figures.items():
        times, cpus, sizes = zip(*rows, strict=True)
        print(
            f"{label}  first answer {statistics.median(times):.2f} s (min {min(times):.2f}, "
            f"max {max(times):.2f}), CPU {statistics.median(cpus):.2f} s, "
            f"RSS after start {statistics.median(sizes):.0f} MB"
        )


def import_times(top: int = 20, starts: int = 3) -> None:
    """Start `starts` times under `-X importtime` (existing data dir), each stopped at its first answer;
    per module the smallest of its times (the least disturbed by other load), then summarised."""
    root = Path(tempfile.mkdtemp(prefix="passgate-startup-"))
    runs: list[dict[str, tuple[int, int]]] = []
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    try:
        with spawn(root / "data") as (process, port):
            first_answer(process, port, time.perf_counter())  # a data dir at the newest revision
        for _ in range(starts):
            with spawn(root / "data", python_flags=("-X", "importtime")) as (process, port):
                first_answer(process, port, time.perf_counter())
            text = (root / "stderr.log").read_text(errors="replace")
            runs.append({m[4]: (int(m[1]), int(m[2])) for m in pattern.finditer(text)})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = {name: tuple(min(run.get(name, own_cumulative)[i] for run in runs) for i in (0, 1))
            for name, own_cumulative in runs[0].items()}  # fmt: skip
    total = sum(own for own, _cumulative in rows.values())
    print(f"\nimports: {len(rows)} modules, {total / 1e6:.2f} s of import time (least of {starts} starts)")
    print(f"  {top} largest cumulative (a module and what it imported first):")
    for name, (_own, cumulative) in sorted(rows.items(), key=lambda row: -row[1][1])[:top]:
        print(f"  {cumulative / 1e3:8.1f} ms  {name}")
    packages: dict[str, int] = {}
    for name, (own, _cumulative) in rows.items():
        packages[name.split(".")[0]] = packages.get(name.split(".")[0], 0) + own
    print(f"  {top} top-level packages by their modules' own import time:")
    for name, own in sorted(packages.items(), key=lambda item: -item[1])[:top]:
        print(f"  {own / 1e3:8.1f} ms  {name}")
    print(f"  {top} Passgate modules by their own import time (route and model building included):")
    mine = [(name, own) for name, (own, _cumulative) in rows.items() if name.startswith("passgate")]
    for name, own in sorted(mine, key=lambda item: -item[1])[:top]:
        print(f"  {own / 1e3:8.1f} ms  {name}")


# --------------------------------------------------------------------------- memory over HTTP


async def sign_in_and_use(connection: Connection, user: User, origin: str) -> None:
    begin = await connection.post_json("/auth/login/begin", {})
    assertion = user.authenticator.get(begin.json(), origin=origin)
    finish = await connection.post_json("/auth/login/finish", assertion)
    cookie = finish.cookie(COOKIE)
    if finish.status != 200 or not cookie:
        raise RuntimeError(f"login/finish {finish.status}: {finish.body[:200]!r}")
    me = await connection.request("GET", "/auth/me", headers={"Cookie": f"{COOKIE}={cookie}"})
    if me.status != 200:
        raise RuntimeError(f"me {me.status}: {me.body[:200]!r}")


async def memory_over_http(signins: int, user_count: int, concurrency: int = 4) -> None:
    root = Path(tempfile.mkdtemp(prefix="passgate-startup-"))
    try:
        with spawn(root / "data") as (process, port):
            first_answer(process, port, time.perf_counter())
            server = _Reachable(port)
            print(f"\nmemory over HTTP: RSS after start {tree_rss_mb(process.pid):.0f} MB")
            users = await register(server, user_count, parallel=concurrency)
            print(f"  after {user_count} sign-ups: {tree_rss_mb(process.pid):.0f} MB")
            shares = [users[index::concurrency] for index in range(concurrency)]
            done, started = 0, time.perf_counter()
            checkpoint = max(1, signins // 5)

            async def worker(share: list[User], count: int) -> None:
                connection = Connection("127.0.0.1", port, origin=server.origin)
                try:
                    for index in range(count):
                        await sign_in_and_use(connection, share[index % len(share)], server.origin)
                finally:
                    await connection.close()

            while done < signins:
                step = min(checkpoint, signins - done)
                counts = [step // concurrency + (i < step % concurrency) for i in range(concurrency)]
                await asyncio.gather(*(worker(share, n) for share, n in zip(shares, counts, strict=True)))
                done += step
                print(
                    f"  after {done:>7} sign-ins (+ /auth/me each): {tree_rss_mb(process.pid):.0f} MB "
                    f"({time.perf_counter() - started:.0f} s)"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)


class _Reachable:
    def __init__(self, port: int):
        self.port = port
        self.origin = f"http://{ORIGIN_HOST}:{port}"


# --------------------------------------------------------------------------- memory in-process


class AsgiClient:
    """Calls an ASGI app directly: no sockets, no HTTP parsing (what grows is the app's)."""

    def __init__(self, app: Any, origin: str):
        self.app, self.origin = app, origin

    async def call(self, method: str, path: str, body: Any = None, cookie: str = "") -> tuple[int, Any, str]:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = [
            (b"host", b"localhost:8000"),
            (b"origin", self.origin.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ] + ([(b"cookie", f"{COOKIE}={cookie}".encode())] if cookie else [])
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 5555),
            "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        messages = [{"type": "http.request", "body": raw, "more_body": False}]
        status, chunks, cookie_out = 0, [], ""

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()
            return {}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, cookie_out
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message["headers"]:
                    if name == b"set-cookie" and value.startswith(f"{COOKIE}=".encode()):
                        cookie_out = value.split(b";")[0].split(b"=", 1)[1].decode()
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        body_out = b"".join(chunks)
        return status, json.loads(body_out) if body_out else None, cookie_out


async def memory_in_process(signins: int, user_count: int, trace: bool, gate: bool) -> None:
    import tracemalloc

    from passgate.config import load_settings
    from passgate.web.app import create_app

    origin = "http://localhost:8000"
    root = Path(tempfile.mkdtemp(prefix="passgate-startup-"))
    settings = load_settings(data_dir=root, rate_limit="1000000/second", port=8000, origins=[origin])
    app = create_app(settings)
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, startup.get, answers.put)
    )
    await answers.get()
    client = AsgiClient(app, origin)
    me = os.getpid()
    print(f"\nmemory in-process: RSS after start {rss_mb(me):.0f} MB (this process, with the driver)")
    users = [SoftAuthenticator("ES256") for _ in range(user_count)]
    for index, authenticator in enumerate(users):
        _s, begin, _c = await client.call("POST", "/auth/register/begin", {"user_name": f"mem-{index}"})
        status, _b, _c = await client.call(
            "POST", "/auth/register/finish", authenticator.create(begin, origin=origin)
        )
        assert status == 200, status
    print(f"  after {user_count} sign-ups: {rss_mb(me):.0f} MB")
    if trace:
        tracemalloc.start(8)
    first: tracemalloc.Snapshot | None = None
    first_done = 0
    checkpoint = max(1, signins // 5)
    calls = "/auth/me and /auth/forward-auth" if gate else "/auth/me"
    for done in range(1, signins + 1):
        authenticator = users[done % user_count]
        _s, begin, _c = await client.call("POST", "/auth/login/begin", {})
        status, _b, cookie = await client.call(
            "POST", "/auth/login/finish", authenticator.get(begin, origin=origin)
        )
        assert status == 200 and cookie, status
        status, _b, _c = await client.call("GET", "/auth/me", cookie=cookie)
        assert status == 200, status
        if gate:
            status, _b, _c = await client.call("GET", "/auth/forward-auth", cookie=cookie)
            assert status == 204, status
        if done % checkpoint == 0:
            print(f"  after {done:>7} sign-ins (+ {calls} each): {rss_mb(me):.0f} MB")
            if trace and first is None:
                gc.collect()  # what is still referenced, not garbage waiting for a collection
                first, first_done = tracemalloc.take_snapshot(), done
    if trace and first is not None:
        gc.collect()
        growth = tracemalloc.take_snapshot().compare_to(first, "traceback")
        total = sum(stat.size_diff for stat in growth)
        per = total / (signins - first_done)
        print(f"  traced growth: {total / 1024:+.0f} KiB, {per:+.0f} B per sign-in")
        print("  largest growth since the first checkpoint:")
        for stat in growth[:10]:
            print(f"    {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
            for line in stat.traceback.format()[-6:]:
                print(f"        {line}")
    await startup.put({"type": "lifespan.shutdown"})
    await lifespan
    shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="start-ups per data-dir kind (0: none)")
    parser.add_argument("--importtime", action="store_true", help="print the slowest imports of a start")
    parser.add_argument("--signins", type=int, default=0, help="sign-ins over HTTP, RSS printed along")
    parser.add_argument("--in-process", type=int, default=0, help="sign-ins against the ASGI app in-process")
    parser.add_argument("--users", type=int, default=64, help="accounts the sign-ins are spread over")
    parser.add_argument("--workers", type=int, default=1, help="`serve --workers` (RSS: the largest)")
    parser.add_argument("--tracemalloc", action="store_true", help="with --in-process: what grew")
    parser.add_argument(
        "--forward-auth", action="store_true", help="with --in-process: each new cookie also through the gate"
    )
    args = parser.parse_args()
    WORKERS[0] = args.workers
    print(f"{machine()}; load average {load_average()}")
    if args.runs:
        measure_startup(args.runs)
    if args.importtime:
        import_times()
    if args.signins:
        new_event_loop().run_until_complete(memory_over_http(args.signins, args.users))
    if args.in_process:
        asyncio.run(memory_in_process(args.in_process, args.users, args.tracemalloc, args.forward_auth))
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
