"""`examples/fastapi_app.py` and `examples/flask_app.py` run as their docstrings say, against a real
`passgate serve`; one protected transfer goes through each, the test playing the browser."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clientkit import BROWSER_ORIGIN, RemoteTenant
from servers import free_port, stop_process
from softkey import SoftAuthenticator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(params=["fastapi_app.py", "flask_app.py"])
def example(request: pytest.FixtureRequest, remote_tenant: RemoteTenant, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")},
        "PASSGATE_URL": remote_tenant.server.url,
        "PASSKEY_TENANT_ID": remote_tenant.id,
        "PASSKEY_API_KEY": remote_tenant.api_key,
        "PORT": str(port),
    }
    log = (tmp_path / "example.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / request.param)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, process, tmp_path / "example.log")
        yield url
    finally:
        stop_process(process)
        log.close()


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the example did not start:\n{log.read_text()}")


def test_example_protects_a_transfer(example: str) -> None:
    user, browser = str(uuid.uuid4()), SoftAuthenticator()
    with httpx.Client(base_url=example, headers={"X-Demo-User": user}, timeout=10) as app:
        options = app.post("/passkey/register/start").json()
        registered = app.post("/passkey/register/finish", json=browser.create(options, origin=BROWSER_ORIGIN))
        assert registered.status_code == 200, registered.text
        asked = app.post("/transfer", json={"to": "bob", "amount": 5})
        assert asked.status_code == 401, asked.text
        assertion = browser.get(asked.json()["detail"], origin=BROWSER_ORIGIN)
        token = app.post("/passkey/transaction/finalize", json=assertion).json()["token"]
        done = app.post("/transfer", json={"to": "bob", "amount": 5}, headers={"X-Passkey-Token": token})
        assert done.status_code == 200, done.text
        assert done.json() == {
            "transferred": {"to": "bob", "amount": 5},
            "confirmed_with": registered.json()["registered"],
        }
        other = app.post("/transfer", json={"to": "mallory", "amount": 5}, headers={"X-Passkey-Token": token})
        assert other.status_code == 401
