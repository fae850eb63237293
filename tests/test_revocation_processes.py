"""A sign-out reaches every other worker and instance before its next decision: two workers on SQLite,
two instances on PostgreSQL, a gate that remembers sessions for minutes (`PASSGATE_REVOCATION_WINDOW`
300) — and still the ended session is refused within 50 ms everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from revoking import two_instances_on_postgresql, two_workers_on_sqlite

BOUND = 0.05  # seconds, the documented guarantee across processes
TRIALS = 5


def test_two_workers_on_sqlite_see_a_sign_out_at_once(tmp_path: Path) -> None:
    lags = two_workers_on_sqlite(tmp_path, TRIALS)
    print("SQLite, --workers 2:", lags.summary())
    assert lags.worst < BOUND, lags.summary()


@pytest.mark.postgres
def test_two_instances_on_postgresql_see_a_sign_out_at_once(tmp_path: Path, postgres_url: str) -> None:
    lags = two_instances_on_postgresql(tmp_path, postgres_url, TRIALS)
    print("PostgreSQL, two instances:", lags.summary())
    assert lags.worst < BOUND, lags.summary()
