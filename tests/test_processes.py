"""Two real `passgate serve` processes on one PostgreSQL database: a ceremony begun on one finishes on
the other, and one assertion posted to both at once succeeds exactly once — for the first-party API and
for the passkey API (whose tenant both processes read from the configuration at start-up)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from apikit import APP_ORIGIN
from appkit import make_settings
from flows import unique_name
from passgate.services import passkey_tenants
from passgate.services.context import Context
from servers import RunningServer, free_port, start_passgate
from softkey import SoftAuthenticator

pytestmark = pytest.mark.postgres
SHARED_KEY = "p" * 48
TENANT = str(uuid.uuid4())  # a passkey-API tenant, declared to both processes


@pytest.fixture(scope="module")
def pair(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, RunningServer]]:
    tmp_path = tmp_path_factory.mktemp("pair")
    port_a, port_b = free_port(), free_port()
    origin_a, origin_b = f"http://localhost:{port_a}", f"http://localhost:{port_b}"
    env = {
        "PASSGATE_DATABASE_URL": postgres_url,
        "PASSGATE_SECRET_KEYS": SHARED_KEY,
        "PASSGATE_ORIGINS": f"{origin_a},{origin_b}",
        "PASSGATE_PUBLIC_URL": origin_a,
        "PASSGATE_PASSKEY_TENANTS": json.dumps({TENANT: {"rp_id": "localhost", "origins": [APP_ORIGIN]}}),
    }
    with (
        start_passgate(tmp_path, env=env, port=port_a, name="a") as server_a,
        start_passgate(tmp_path, env=env, port=port_b, name="b") as server_b,
    ):
        yield server_a, server_b


def _browser(origin: str) -> httpx.Client:
    """One browser on the page at `origin`: its cookie (host `localhost`) goes to both processes."""
    return httpx.Client(headers={"origin": origin}, timeout=10)


def test_begin_on_one_process_finish_on_the_other(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = (server.url for server in pair)
    origin = a  # the page the person is on; its requests may land on either process
    authenticator = SoftAuthenticator()
    name = unique_name()
    with _browser(origin) as browser:
        begin = browser.post(f"{a}/auth/register/begin", json={"user_name": name})
        assert begin.status_code == 200, begin.text
        finish = browser.post(
            f"{b}/auth/register/finish", json=authenticator.create(begin.json(), origin=origin)
        )
        assert finish.status_code == 200, finish.text
        # Either process accepts the session (same keys, same database).
        for server in (a, b):
            me = browser.get(f"{server}/auth/me")
            assert me.status_code == 200 and me.json()["user_name"] == name

        # A signed-in re-check begun on B finishes on A and refreshes the same session.
        session_id = browser.get(f"{a}/auth/me").json()["session_id"]
        begin = browser.post(f"{b}/auth/login/begin", json={})
        finish = browser.post(f"{a}/auth/login/finish", json=authenticator.get(begin.json(), origin=origin))
        assert finish.status_code == 200, finish.text
        assert browser.get(f"{b}/auth/me").json()["session_id"] == session_id

        # Signed out: a fresh sign-in begun on A finishes on B.
        assert browser.post(f"{b}/auth/logout").status_code == 200
        assert browser.get(f"{a}/auth/me").status_code == 401
        begin = browser.post(f"{a}/auth/login/begin", json={"user_name": name})
        finish = browser.post(f"{b}/auth/login/finish", json=authenticator.get(begin.json(), origin=origin))
        assert finish.status_code == 200, finish.text
        me = browser.get(f"{a}/auth/me").json()
        assert me["user_name"] == name and me["session_id"] != session_id


def test_one_assertion_posted_to_both_processes_succeeds_once(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = (server.url for server in pair)
    origin = a
    authenticator = SoftAuthenticator()
    with _browser(origin) as browser:
        begin = browser.post(f"{a}/auth/register/begin", json={"user_name": unique_name()})
        assert browser.post(
            f"{a}/auth/register/finish", json=authenticator.create(begin.json(), origin=origin)
        )
    with _browser(origin) as to_a, _browser(origin) as to_b:  # signed out: nothing binds the challenge
        for _ in range(5):
            assertion = authenticator.get(to_a.post(f"{a}/auth/login/begin", json={}).json(), origin=origin)
            statuses = _post_at_once(
                assertion, [(to_a, f"{a}/auth/login/finish"), (to_b, f"{b}/auth/login/finish")]
            )
            assert sorted(statuses) == [200, 400]
            to_a.cookies.clear()
            to_b.cookies.clear()


def test_one_passkey_api_assertion_posted_to_both_processes_succeeds_once(
    pair: tuple[RunningServer, RunningServer], postgres_url: str, tmp_path: Path
) -> None:
    a, b = (f"{server.url}/passkeys/{TENANT}" for server in pair)
    ctx = Context.build(make_settings(tmp_path, database_url=postgres_url, secret_keys=[SHARED_KEY]))
    key = {"apikey": passkey_tenants.add_api_key(ctx, TENANT).secret}  # as `passgate api-key add` does
    ctx.db.dispose()
    authenticator, user = SoftAuthenticator(), str(uuid.uuid4())
    with httpx.Client(timeout=10) as to_a, httpx.Client(timeout=10) as to_b:  # a backend, calling both
        begin = to_a.post(
            f"{a}/registration/initialize", json={"user_id": user, "username": "ann"}, headers=key
        )
        credential = authenticator.create(begin.json(), origin=APP_ORIGIN)
        assert to_b.post(f"{b}/registration/finalize", json=credential).status_code == 200  # begun on A
        for _ in range(5):
            begin = to_a.post(f"{a}/login/initialize")  # discoverable: no key
            assertion = authenticator.get(begin.json(), origin=APP_ORIGIN)
            statuses = _post_at_once(
                assertion, [(to_a, f"{a}/login/finalize"), (to_b, f"{b}/login/finalize")]
            )
            assert sorted(statuses) == [200, 401]  # 401 "failed to get session data": the challenge is gone
        transaction = {"user_id": user, "transaction_id": str(uuid.uuid4()), "transaction_data": {"pay": 5}}
        begin = to_b.post(f"{b}/transaction/initialize", json=transaction, headers=key)
        assertion = authenticator.get(begin.json(), origin=APP_ORIGIN)
        to_a.headers.update(key)
        to_b.headers.update(key)
        statuses = _post_at_once(
            assertion, [(to_a, f"{a}/transaction/finalize"), (to_b, f"{b}/transaction/finalize")]
        )
        assert sorted(statuses) == [200, 401]
        # Either process signs with the tenant's one key, which either process publishes.
        begin = to_a.post(f"{a}/login/initialize")
        token = to_b.post(f"{b}/login/finalize", json=authenticator.get(begin.json(), origin=APP_ORIGIN))
        keys = KeySet.import_key_set(to_a.get(f"{a}/.well-known/jwks.json").json())
        assert jwt.decode(token.json()["token"], keys, algorithms=["RS256"]).claims["sub"] == user


def _post_at_once(body: dict[str, Any], targets: list[tuple[httpx.Client, str]]) -> list[int]:
    """POST the same body to every target from its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(targets))
    statuses: list[int] = []

    def post(http: httpx.Client, url: str) -> None:
        barrier.wait(timeout=10)
        statuses.append(http.post(url, json=body).status_code)

    threads = [threading.Thread(target=post, args=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses
