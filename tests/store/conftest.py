"""Fixtures of the store tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture
def empty_url(database_url: str) -> Iterator[str]:
    """A database with no schema (SQLite: the test's own file; PostgreSQL: a new database), for the
    tests that migrate from an older revision themselves."""
    if not database_url.startswith("postgresql"):
        yield database_url
        return
    import psycopg

    name = f"passgate_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"{database_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
