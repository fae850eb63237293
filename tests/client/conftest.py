"""One real `passgate serve` for the client tests, and tenants made on it with `passgate tenant add`, as
an operator would."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from servers import RunningServer, passgate_command, start_passgate

BROWSER_ORIGIN = "http://localhost:3000"  # where the backend's users' browsers run


@dataclass(frozen=True)
class RemoteTenant:
    server: RunningServer
    id: str
    api_key: str

    @property
    def base_url(self) -> str:
        """The API root, as the JS SDK takes it (the tenant id is appended)."""
        return f"{self.server.url}/passkeys/"


def passgate_cli(server: RunningServer, *args: str) -> str:
    done = subprocess.run(
        passgate_command(*args),
        cwd=server.data_dir.parent,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def add_tenant(server: RunningServer, *origins: str) -> RemoteTenant:
    flags = [part for origin in origins or (BROWSER_ORIGIN,) for part in ("--origin", origin)]
    output = passgate_cli(server, "tenant", "add", "Shop", "--rp-id", "localhost", *flags)
    tenant_id = re.search(r"Tenant ([0-9a-f-]{36}) created", output)
    assert tenant_id, output
    return RemoteTenant(server, tenant_id.group(1), output.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def passgate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = tmp_path_factory.mktemp("client-server")
    with start_passgate(root) as server:
        yield server


@pytest.fixture(scope="session")
def remote_tenant(passgate_server: RunningServer) -> RemoteTenant:
    return add_tenant(passgate_server)
