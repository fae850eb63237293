"""One real `passgate serve` for the client SDK tests, and a tenant on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clientkit import RemoteTenant, add_tenant
from servers import RunningServer, start_passgate


@pytest.fixture(scope="session")
def passgate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = tmp_path_factory.mktemp("client-server")
    with start_passgate(root) as server:
        yield server


@pytest.fixture(scope="session")
def remote_tenant(passgate_server: RunningServer) -> RemoteTenant:
    return add_tenant(passgate_server)
