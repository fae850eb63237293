"""A sign-out reaches every other worker and instance before its next decision: two workers on SQLite,
two instances on PostgreSQL, a gate that remembers sessions for minutes (`PASSGATE_REVOCATION_WINDOW`
300) — and still the ended session is refused within 50 ms everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from revoking import measure
from servers import free_port, start_passgate

LONG_WINDOW = {"PASSGATE_REVOCATION_WINDOW": "300"}  # the backstop must not be what refuses
BOUND = 0.05  # seconds, the documented guarantee across processes


def test_two_workers_on_sqlite_see_a_sign_out_at_once(tmp_path: Path) -> None:
    with start_passgate(tmp_path, env=LONG_WINDOW, workers=2) as server:
        lags = measure(server.url, [server.url], server.url)
    print("SQLite, --workers 2:", lags.summary())
    assert lags.worst < BOUND, lags.summary()


@pytest.mark.postgres
def test_two_instances_on_postgresql_see_a_sign_out_at_once(tmp_path: Path, postgres_url: str) -> None:
    port_a, port_b = free_port(), free_port()
    origin = f"http://localhost:{port_a}"
    env = {
        **LONG_WINDOW,
        "PASSGATE_DATABASE_URL": postgres_url,
        "PASSGATE_SECRET_KEYS": "r" * 48,
        "PASSGATE_ORIGINS": f"{origin},http://localhost:{port_b}",
        "PASSGATE_PUBLIC_URL": origin,
    }
    with (
        start_passgate(tmp_path, env=env, port=port_a, name="a") as a,
        start_passgate(tmp_path, env=env, port=port_b, name="b") as b,
    ):
        lags = measure(a.url, [a.url, b.url], origin)
    print("PostgreSQL, two instances:", lags.summary())
    assert lags.worst < BOUND, lags.summary()
