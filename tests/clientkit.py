"""Tenants made on a real `passgate serve` with `passgate tenant add`, as an operator would, for the
client SDK tests."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

from servers import RunningServer, passgate_command

IN_CI = os.environ.get("CI", "").lower() == "true"
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
