"""Start a real `passgate serve` process for a test: its own data dir, environment and free port.

    with start_passgate(tmp_path, env={"PASSGATE_DATABASE_URL": url}) as server:
        httpx.get(f"{server.url}/auth/me")

The child's environment is the test's minus every inherited `PASSGATE_*` variable, plus sane test
defaults (data dir under `tmp_path`, a generous rate limit, the port's `http://localhost:<port>` origin),
plus `env`. It runs with `tmp_path` as its working directory, so no stray `.env` / `passgate.toml`
is read. On exit the process (and its workers) get SIGTERM, then SIGKILL if they linger.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STARTUP_TIMEOUT = 30.0
TEST_SECRET_KEY = "s" * 48


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def origin(self) -> str:
        return self.url

    def output(self) -> str:
        """Everything the server wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def passgate_command(*args: str) -> list[str]:
    """The `passgate` command line, run with this interpreter (works without the console script)."""
    return [sys.executable, "-c", "from passgate.cli import main; main()", *args]


def server_env(data_dir: Path, port: int, scheme: str, env: Mapping[str, str] | None) -> dict[str, str]:
    child = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    child.update(
        {
            "PASSGATE_DATA_DIR": str(data_dir),
            "PASSGATE_HOST": "127.0.0.1",
            "PASSGATE_PORT": str(port),
            "PASSGATE_ORIGINS": f"{scheme}://localhost:{port}",
            "PASSGATE_RATE_LIMIT": "100000/minute",
        }
    )
    child.update(env or {})
    return child


@contextlib.contextmanager
def start_passgate(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    workers: int = 1,
    args: Sequence[str] = (),
    name: str = "server",
    open_files: int | None = None,
) -> Iterator[RunningServer]:
    """Run `passgate serve` until the block ends; yields once it answers HTTP(S).

    `args` are extra `serve` options (e.g. `--ssl-certfile`); with `--ssl-certfile` the URL is https.
    `name` separates the data dirs and logs of several servers under one `tmp_path`.
    `open_files` caps the server's open-file limit (soft and hard), as a small host's default would.
    """
    port = port or free_port()
    scheme = "https" if "--ssl-certfile" in args else "http"
    root = tmp_path / name
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = root / "server.log"
    child_env = server_env(data_dir, port, scheme, env)
    command = passgate_command("serve", "--port", str(port), "--workers", str(workers), *args)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if open_files is None else _limit_open_files(open_files),
        )
    server = RunningServer(
        url=f"{scheme}://localhost:{port}",
        port=port,
        process=process,
        data_dir=data_dir,
        log_path=log_path,
        env=child_env,
    )
    try:
        _wait_ready(server)
        yield server
    finally:
        stop(server)


def _limit_open_files(count: int) -> Callable[[], None]:
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return limit


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(verify=False, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"passgate serve exited with {server.process.returncode}:\n{server.output()[-4000:]}"
                )
            try:
                http.get(f"{server.url}/auth/me")
                return
            except httpx.TransportError:
                time.sleep(0.05)
    raise RuntimeError(
        f"passgate serve did not answer within {STARTUP_TIMEOUT} s:\n{server.output()[-4000:]}"
    )


def stop(server: RunningServer, timeout: float = 10.0) -> None:
    stop_process(server.process, timeout)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the server's process group (uvicorn stops its workers), SIGKILL after `timeout`."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # The group leader is not reaped yet, so its group id still names only our processes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
