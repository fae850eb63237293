"""Forward-auth benchmark: `GET /auth/forward-auth` with a valid session against a bare ASGI app.

    .venv/bin/python benchmarks/forward_auth.py                 # 3 rounds of 5 s each, c=32
    .venv/bin/python benchmarks/forward_auth.py --rounds 5 --seconds 10

It starts `passgate serve` (one worker) in a fresh data directory with `PASSGATE_TRUSTED_PROXIES=127.0.0.1`,
registers one user with the test suite's software authenticator to get a session cookie, and starts a
bare ASGI app that answers 204 (with the same response headers) under the same uvicorn settings as
`passgate serve` (uvloop, httptools, no access log, no proxy-header middleware). Then, in the same run
and alternating, `wrk -c32 -t2` sends both the requests a proxy would send: the cookie plus
`X-Forwarded-Proto/Host/Uri/Method/For`.
For each target it prints requests/s and the **server CPU per request** (utime + stime of the server
process tree from /proc, before and after, divided by requests completed), then the ratio. Medians
over the rounds. The target is ≤ 45 µs per request and ≤ 1.5x the bare app. Not part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from common import free_port, machine, run_server, tree_cpu_seconds

TARGET_US = 45.0
TARGET_RATIO = 1.3  # and no more than 1.3x the bare app under the same server
PROXY_HEADERS = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "app.localhost",
    "X-Forwarded-Uri": "/dashboard/reports?tab=weekly",
    "X-Forwarded-Method": "GET",
    "X-Forwarded-For": "203.0.113.7",
}


@dataclass
class Sample:
    requests: int
    seconds: float
    cpu: float
    bad: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6


# The bare app answers with the same response headers as the gate (fixed values), so the comparison
# measures the gate's decision, not uvicorn writing five more headers.
BARE_HEADERS = [
    (b"x-auth-user-id", b"0b6c8a3e-5d0f-4c5e-9f53-2d1c7a9e4b10"),
    (b"remote-user", b"bench@example.com"),
    (b"remote-name", b"bench@example.com"),
    (b"remote-email", b"bench@example.com"),
    (b"remote-groups", b""),
    (b"cache-control", b"no-store"),
]


async def _bare_app(scope: dict[str, object], receive: object, send: object) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 204, "headers": BARE_HEADERS})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]


def serve_bare(port: int) -> None:
    """The bare app under the server setup `passgate serve` uses (see passgate/cli.py): uvloop and the
    bounded httptools protocol, so the ratio measures the gate's decision, not the server's limits."""
    import uvicorn

    from passgate.web import server

    uvicorn.run(
        _bare_app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=server.PROTOCOL,
        access_log=False,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        lifespan="off",
    )


@contextlib.contextmanager
def bare_server() -> Iterator[tuple[int, int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-bare", str(port)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/")
        yield port, process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def _wait_http(url: str, timeout: float = 20.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def session_cookie(origin: str) -> str:
    """Sign up one user through the /auth API with the software authenticator; its Cookie header."""
    import httpx

    from softkey import SoftAuthenticator

    authenticator = SoftAuthenticator()
    with httpx.Client(base_url=origin, headers={"origin": origin}) as http:
        begin = http.post("/auth/register/begin", json={"user_name": "bench@example.com"})
        begin.raise_for_status()
        finish = http.post("/auth/register/finish", json=authenticator.create(begin.json(), origin=origin))
        finish.raise_for_status()
        return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


def run_wrk(url: str, cookie: str, seconds: float, pid: int) -> Sample:
    headers = [
        arg
        for name, value in {**PROXY_HEADERS, "Cookie": cookie}.items()
        for arg in ("-H", f"{name}: {value}")
    ]
    command = ["wrk", "-c32", "-t2", f"-d{seconds:g}s", *headers, url]
    before = tree_cpu_seconds(pid)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = tree_cpu_seconds(pid) - before
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    assert total is not None, output
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    duration = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    return Sample(int(total.group(1)), duration, cpu, int(bad.group(1)) if bad else 0)


def median(samples: list[Sample], attribute: str) -> float:
    return statistics.median(getattr(sample, attribute) for sample in samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per round and target")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--window", default="5", help="PASSGATE_REVOCATION_WINDOW (0: read the database every time)"
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    env = {
        "PASSGATE_TRUSTED_PROXIES": "127.0.0.1",
        "PASSGATE_RETURN_HOSTS": "app.localhost",
        "PASSGATE_REVOCATION_WINDOW": args.window,
    }
    with run_server(env=env) as server, bare_server() as (bare_port, bare_pid):
        cookie = session_cookie(server.origin)
        gate = f"http://127.0.0.1:{server.port}/auth/forward-auth"
        bare = f"http://127.0.0.1:{bare_port}/auth/forward-auth"
        run_wrk(gate, cookie, 1, server.process.pid)  # warm-up
        run_wrk(bare, cookie, 1, bare_pid)
        gates, bares = [], []
        for _ in range(args.rounds):
            gates.append(run_wrk(gate, cookie, args.seconds, server.process.pid))
            bares.append(run_wrk(bare, cookie, args.seconds, bare_pid))
    return report(gates, bares, args)


def report(gates: list[Sample], bares: list[Sample], args: argparse.Namespace) -> int:
    bad = sum(sample.bad for sample in gates)
    gate_us, bare_us = median(gates, "cpu_us"), median(bares, "cpu_us")
    ratio = gate_us / bare_us
    print(f"# forward-auth benchmark — {machine()}")
    print(
        f"# wrk -c32 -t2 -d{args.seconds:g}s, {args.rounds} rounds, medians; cookie + X-Forwarded-* headers; "
        f"revocation window {args.window} s"
    )
    print(f"{'target':<28}{'requests/s':>12}{'server CPU µs/request':>24}")
    print(f"{'passgate /auth/forward-auth':<28}{median(gates, 'per_second'):>12,.0f}{gate_us:>24.1f}")
    print(f"{'bare ASGI 204':<28}{median(bares, 'per_second'):>12,.0f}{bare_us:>24.1f}")
    print(f"ratio (passgate / bare): {ratio:.2f}x   non-2xx answers from the gate: {bad}")
    met = gate_us <= TARGET_US and ratio <= TARGET_RATIO and bad == 0
    print(f"target ≤ {TARGET_US:g} µs and ≤ {TARGET_RATIO}x bare: {'met' if met else 'MISSED'}")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
