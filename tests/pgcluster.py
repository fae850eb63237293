"""A private PostgreSQL server for fault tests: `initdb` + `pg_ctl` on a free port, stopped and started at
will, never the machine's own service.

    with private_postgres() as cluster:
        url = cluster.url            # postgresql://postgres@127.0.0.1:<port>/postgres (trust auth)
        cluster.stop(); cluster.start()

Debian installs the server programs under /usr/lib/postgresql/<version>/bin (not on PATH). PostgreSQL
refuses to run as root, so as root the cluster belongs to the `postgres` user and its programs run
through `runuser`; its directory is under /tmp (a pytest `tmp_path` is private to root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from servers import free_port

START_TIMEOUT = 30


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin directory, or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


@dataclass
class PrivatePostgres:
    bin: Path
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
            "-w", "-t", str(START_TIMEOUT), "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast`: disconnect every client and shut down cleanly (what `systemctl stop` does)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")
        return ""


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private cluster on a free port; stopped and removed afterwards."""
    binaries = pg_bin()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL server programs (initdb, pg_ctl) not found")
    root = Path(tempfile.mkdtemp(prefix="passgate-pg-"))
    cluster = PrivatePostgres(bin=binaries, root=root, port=free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
