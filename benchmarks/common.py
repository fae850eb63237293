"""Shared benchmark helpers: a `passgate serve` subprocess, its CPU time from /proc, a cheap keep-alive
HTTP/1.1 client on asyncio streams, and percentiles.

Why not httpx: on this 2-core machine an httpx load driver saturates its own core long before the
server does (docs/performance.md). The client here parses just enough HTTP/1.1 for Passgate's answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))  # the test suite's server launcher and software authenticator

from servers import free_port, passgate_command, stop_process  # noqa: E402
from softkey import SoftAuthenticator  # noqa: E402

COOKIE = "passgate"  # the session cookie's name on an http:// origin

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the server process


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    started: float = 0.0  # time.perf_counter() just before the process was started
    answered: float = 0.0  # … when it first answered an HTTP request

    @property
    def startup_seconds(self) -> float:
        """From starting the process to its first answered request."""
        return self.answered - self.started

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """utime + stime of the server and every process below it (uvicorn workers), all threads."""
        return tree_cpu_seconds(self.process.pid)

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: the server itself with one worker, else uvicorn's worker
        processes (not the supervisor, not multiprocessing's resource tracker)."""
        pids = tree_pids(self.process.pid)
        workers = [pid for pid in pids[1:] if "spawn_main" in _cmdline(pid)]
        return workers or [self.process.pid]


@contextlib.contextmanager
def run_server(
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    keep_data: bool = False,
    args: Sequence[str] = (),
    root: Path | None = None,
) -> Iterator[Server]:
    """Start `passgate serve` on a free port in a fresh data directory (or in `root`, which the caller
    owns and removes); stop it (and its workers) after."""
    own_root = root is None
    root = Path(tempfile.mkdtemp(prefix="passgate-bench-")) if root is None else root
    data_dir = root / "data"
    port = free_port()
    child_env = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    child_env.update(
        {
            "PASSGATE_DATA_DIR": str(data_dir),
            "PASSGATE_HOST": "127.0.0.1",
            "PASSGATE_PORT": str(port),
            "PASSGATE_ORIGINS": f"http://localhost:{port}",
            # A per-second window: `limits`' in-memory moving window keeps one entry per hit in the
            # window and inserts at the front of a list, so a per-minute limit this high would make
            # every request copy a list of ~100k entries (one client address sends everything here).
            "PASSGATE_RATE_LIMIT": "1000000/second",
        }
    )
    child_env.update(env or {})
    log_path = root / "server.log"
    command = passgate_command(
        "serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning", *args
    )
    with log_path.open("ab") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=root, env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(port=port, process=process, data_dir=data_dir, log_path=log_path, started=started)
    try:
        _wait_ready(server, workers)
        yield server
    finally:
        stop_process(process)
        if own_root and not keep_data:
            shutil.rmtree(root, ignore_errors=True)
        elif own_root:
            print(f"server data kept in {root}", file=sys.stderr)


@contextlib.contextmanager
def run_tutorial(keep_data: bool = False) -> Iterator[Server]:
    """Start `benchmarks/tutorial_server.py` (the same-run baseline) on a free port with a fresh SQLite
    file; stop it after."""
    root = Path(tempfile.mkdtemp(prefix="tutorial-bench-"))
    port = free_port()
    log_path = root / "server.log"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "tutorial_server.py"),
        "--port",
        str(port),
        "--database",
        str(root / "tutorial.db"),
    ]
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(port=port, process=process, data_dir=root, log_path=log_path, started=started)
    try:
        _wait_ready(server, 1, path="/accounts/me")
        yield server
    finally:
        stop_process(process)
        if not keep_data:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"tutorial server data kept in {root}", file=sys.stderr)


def _wait_ready(server: Server, workers: int, timeout: float = 60.0, path: str = "/auth/me") -> None:
    """Poll every 10 ms until the server answers (any HTTP status); records `server.answered`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.output()[-4000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=2)
            answered = True
        except urllib.error.HTTPError:
            answered = True  # answering (401)
        except OSError:
            answered = False
        if answered:
            server.answered = server.answered or time.perf_counter()
            # with several workers, wait until every worker process exists
            if workers == 1 or len(server.worker_pids()) >= workers:
                if workers > 1:
                    time.sleep(0.3)  # let the lifespan (migrations check) of late workers settle
                return
        time.sleep(0.01)
    raise RuntimeError(f"server did not answer within {timeout} s:\n{server.output()[-4000:]}")


@contextlib.contextmanager
def scratch_postgres(url: str, keep: bool = False) -> Iterator[str]:
    """A fresh database on the PostgreSQL server of `url` (dropped afterwards unless `keep`), so a
    benchmark never writes into an existing database."""
    import uuid

    import psycopg

    name = f"passgate_bench_{uuid.uuid4().hex[:10]}"
    base = url.rsplit("/", 1)[0]
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        if keep:
            print(f"database {name} kept", file=sys.stderr)
        else:
            with psycopg.connect(url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- CPU time from /proc


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (index 0 is field 3, `state`)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants. Uses /proc/<pid>/task/*/children when the kernel has it,
    else one scan of every /proc/<pid>/stat for parent ids."""
    children: dict[int, list[int]] = {}
    probe = Path(f"/proc/{root}/task/{root}/children")
    if probe.exists():
        pids, index = [root], 0
        while index < len(pids):
            pid = pids[index]
            index += 1
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    pids.extend(int(child) for child in task.read_text().split())
        return pids
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                parent = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    pids, index = [root], 0
    while index < len(pids):
        pids.extend(children.get(pids[index], []))
        index += 1
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (VmRSS from /proc/<pid>/status), 0 if gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (every core; user, nice, system, irq, softirq,
    steal) since boot, from the first line of /proc/stat."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
        return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS
    return 0.0


def pids_cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """utime + stime (every thread) of each of `pids`, in seconds (0 for a process that is gone)."""
    seconds = {}
    for pid in pids:
        try:
            fields = _stat_fields(pid)
            seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            seconds[pid] = 0.0
    return seconds


def tree_cpu_seconds(root: int) -> float:
    """Sum of utime + stime (every thread) over a process tree, in seconds."""
    ticks = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(pid)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


# --------------------------------------------------------------------------- a minimal HTTP/1.1 client


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    cookies: list[str] = field(default_factory=list)  # raw Set-Cookie values
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    def cookie(self, name: str) -> str | None:
        for value in self.cookies:
            pair = value.split(";", 1)[0]
            key, _, cookie_value = pair.partition("=")
            if key.strip() == name:
                return cookie_value.strip()
        return None


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; requests go one at a time (no pipelining)."""

    def __init__(self, host: str, port: int, *, origin: str | None = None):
        self.host, self.port = host, port
        self._fixed = f"Host: localhost:{port}\r\n" + (f"Origin: {origin}\r\n" if origin else "")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader, self._writer = reader, writer
        return reader, writer

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Response:
        if self._reader is None or self._writer is None:
            reader, writer = await self._open()
        else:
            reader, writer = self._reader, self._writer
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        writer.write(head.encode("latin-1") + b"\r\n" + (body or b""))
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            raise HttpError(f"connection closed: {exc}") from None
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        response = Response(status=status, headers={})
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                response.cookies.append(value)
            else:
                response.headers[name] = value
        try:  # the server may go away between the head and the body (a killed process)
            if "content-length" in response.headers:
                response.body = await reader.readexactly(int(response.headers["content-length"]))
            elif response.headers.get("transfer-encoding", "").lower() == "chunked":
                response.body = await _read_chunked(reader)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            raise HttpError(f"connection closed in the body: {exc}") from None
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def post_json(self, path: str, value: Any, headers: Mapping[str, str] | None = None) -> Response:
        return await self.request("POST", path, json.dumps(value, separators=(",", ":")).encode(), headers)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it is, with uvicorn[standard]): a cheaper client."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


# --------------------------------------------------------------------------- numbers


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {sys.version.split()[0]}"


# --------------------------------------------------------------------------- accounts and databases


@dataclass
class User:
    name: str
    authenticator: SoftAuthenticator
    cookie: str = ""


class Reachable(Protocol):
    @property
    def port(self) -> int: ...

    @property
    def origin(self) -> str: ...


async def register(server: Reachable, count: int, parallel: int = 8, prefix: str = "bench") -> list[User]:
    """`count` accounts, each with its own ES256 passkey, registered over HTTP like a browser would."""
    run = uuid.uuid4().hex[:8]
    users = [User(f"{prefix}-{run}-{index}", SoftAuthenticator("ES256")) for index in range(count)]

    async def worker(chunk: list[User]) -> None:
        connection = Connection("127.0.0.1", server.port, origin=server.origin)
        try:
            for user in chunk:
                begin = await connection.post_json("/auth/register/begin", {"user_name": user.name})
                if begin.status != 200:
                    raise HttpError(f"register/begin {begin.status}: {begin.body[:300]!r}")
                credential = user.authenticator.create(begin.json(), origin=server.origin)
                finish = await connection.post_json("/auth/register/finish", credential)
                if finish.status != 200:
                    raise HttpError(f"register/finish {finish.status}: {finish.body[:300]!r}")
                user.cookie = finish.cookie(COOKIE) or ""
        finally:
            await connection.close()

    await asyncio.gather(*(worker(users[index::parallel]) for index in range(parallel)))
    return users


def database_env(stack: contextlib.ExitStack, url: str, keep: bool = False) -> dict[str, str]:
    """`PASSGATE_DATABASE_URL` for a benchmark's server: a scratch database on a PostgreSQL server's URL
    (dropped at the end of `stack` unless `keep`), a SQLite URL as given, nothing for the default."""
    if url.startswith(("postgresql://", "postgres://")):
        return {"PASSGATE_DATABASE_URL": stack.enter_context(scratch_postgres(url, keep))}
    return {"PASSGATE_DATABASE_URL": url} if url else {}
