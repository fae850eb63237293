"""How long an ended session still opens the gate in other processes: sign in on one server, let every
gate (each worker of each server) remember the session, sign out, then ask the gates on fresh
connections until none lets the cookie through. Used by tests and `benchmarks/revocation.py`."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from flows import unique_name
from servers import free_port, start_passgate
from softkey import SoftAuthenticator

LONG_WINDOW = {"PASSGATE_REVOCATION_WINDOW": "300"}  # the backstop must not be what refuses

ROUND = 8  # concurrent fresh connections per round: every worker of a server answers some
QUIET = 0.15  # seconds of refusals from every gate after which the lag is known
GIVE_UP = 2.0  # seconds: a gate still allowing then is recorded as this lag


@dataclass(frozen=True)
class Lags:
    seconds: list[float]  # per trial: from the sign-out's answer to the answer of the last 204 any gate gave
    first_round: list[float]  # per trial: when the first round of questions had its answers

    @property
    def worst(self) -> float:
        return max(self.seconds)

    def summary(self) -> str:
        ms = sorted(1000 * lag for lag in self.seconds)
        resolution = 1000 * statistics.median(self.first_round)
        return (
            f"{len(ms)} sign-outs: last 204 after the sign-out: median {statistics.median(ms):.1f} ms, "
            f"p90 {ms[int(0.9 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms "
            f"(0 = refused from the first round, answered {resolution:.1f} ms after the sign-out, median)"
        )


def _gate(url: str, cookie: str) -> tuple[int, float]:
    """One forward-auth question on a new connection (a plain socket: a new httpx client would cost
    more than the latency being measured): its status, and when it was answered."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"GET /auth/forward-auth HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: passgate={cookie}\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as connection:
        connection.sendall(request.encode())
        status_line = connection.recv(64)
        answered = time.monotonic()
    return int(status_line.split(b" ", 2)[1]), answered


def _ask_all(pool: ThreadPoolExecutor, gates: Sequence[str], cookie: str) -> list[tuple[int, float]]:
    targets = [gate for gate in gates for _ in range(ROUND)]
    return list(pool.map(lambda url: _gate(url, cookie), targets))


def measure(signin: str, gates: Sequence[str], origin: str, trials: int = 5) -> Lags:
    """Sign in at `signin`, prime every gate in `gates`, sign out at `signin`; `trials` times."""
    key = SoftAuthenticator()
    lags: list[float] = []
    first_round: list[float] = []
    with httpx.Client(base_url=signin, headers={"origin": origin}, timeout=10) as browser:
        begin = browser.post("/auth/register/begin", json={"user_name": unique_name("revoke")})
        assert browser.post("/auth/register/finish", json=key.create(begin.json(), origin=origin)).is_success
        with ThreadPoolExecutor(ROUND * len(gates)) as pool:
            for _ in range(trials):
                options = browser.post("/auth/login/begin", json={}).json()
                assert browser.post("/auth/login/finish", json=key.get(options, origin=origin)).is_success
                cookie = browser.cookies["passgate"]
                primed = {status for status, _ in _ask_all(pool, gates, cookie)}
                assert primed == {204}, "every gate remembers the session"
                assert browser.post("/auth/logout").is_success
                ended = time.monotonic()
                last_allowed = ended
                first = None
                while time.monotonic() - last_allowed < QUIET and last_allowed - ended < GIVE_UP:
                    answers = _ask_all(pool, gates, cookie)
                    first = first or time.monotonic() - ended
                    # When each 204 was answered, not when its round ended: under load a round of
                    # fresh connections takes longer than the bound, and an early 204 in it is early.
                    allowed = [answered for status, answered in answers if status == 204]
                    last_allowed = max([last_allowed, *allowed])
                    assert {status for status, _ in answers} <= {204, 401}
                lags.append(last_allowed - ended)
                first_round.append(first or 0.0)
                browser.cookies.clear()
    return Lags(lags, first_round)


def two_workers_on_sqlite(root: Path, trials: int) -> Lags:
    with start_passgate(root, env=LONG_WINDOW, workers=2) as server:
        return measure(server.url, [server.url], server.url, trials)


def two_instances_on_postgresql(root: Path, database_url: str, trials: int) -> Lags:
    """Signed in and out on one instance, asked at both."""
    port_a, port_b = free_port(), free_port()
    origin = f"http://localhost:{port_a}"
    env = {
        **LONG_WINDOW,
        "PASSGATE_DATABASE_URL": database_url,
        "PASSGATE_SECRET_KEYS": "r" * 48,
        "PASSGATE_ORIGINS": f"{origin},http://localhost:{port_b}",
        "PASSGATE_PUBLIC_URL": origin,
    }
    with (
        start_passgate(root, env=env, port=port_a, name="a") as a,
        start_passgate(root, env=env, port=port_b, name="b") as b,
    ):
        return measure(a.url, [a.url, b.url], origin, trials)
