"""Shared fixtures: settings in a temporary data dir, the app over ASGI on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from appkit import app_client, make_settings
from flows import Passkeys
from passgate.config import Settings
from passgate.services.context import Context

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("PASSGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run (dropped afterwards)."""
    import psycopg

    if not _postgres_reachable():
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but {PG_ADMIN_URL} is unreachable")
        pytest.skip("PostgreSQL not reachable (set PASSGATE_TEST_POSTGRES)")
    name = f"passgate_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite (the data dir's file), else a fresh PostgreSQL database for this test module
    (created next to the run's `postgres_url`, dropped afterwards), so that tests which age rows in bulk
    touch nothing else. A test using it runs on both (see `pytest_generate_tests`)."""
    if request.param == "sqlite":
        yield None
        return
    import psycopg

    run_url: str = request.getfixturevalue("postgres_url")
    name = f"passgate_module_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(run_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"{run_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(run_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "module_database_url" in metafunc.fixturenames:
        metafunc.parametrize(
            "module_database_url",
            ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
            indirect=True,
            scope="module",
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'passgate.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run; tests start from a copy (migrating costs ~70 ms)."""
    from passgate.store.database import Database

    path = tmp_path_factory.mktemp("template") / "passgate.db"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    database.dispose()
    return path


@pytest.fixture
def ctx(settings: Settings, migrated_sqlite: Path) -> Iterator[Context]:
    import shutil

    shutil.copyfile(migrated_sqlite, settings.data_dir / "passgate.db")
    context = Context.build(settings)
    context.db.migrate()  # a no-op on the copy; keeps the fixture honest if the URL is not the default
    yield context
    context.db.dispose()


@pytest.fixture
async def client(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(ctx) as http:
        yield http


@pytest.fixture
async def passkeys(client: httpx.AsyncClient) -> Passkeys:
    return Passkeys(client)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """For running `passgate` commands: no inherited PASSGATE_* variables, no stray .env (the working
    directory is the test's own), a fresh data directory."""
    for name in list(os.environ):
        if name.startswith("PASSGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "data"
    monkeypatch.setenv("PASSGATE_DATA_DIR", str(directory))
    for name in ("PASSGATE_HOST", "PASSGATE_PORT"):  # `serve --host/--port` set these: restore afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    yield directory
