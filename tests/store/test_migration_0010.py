"""Migration 0010 on SQLite and PostgreSQL: an existing passkey-API tenant keeps what its options said
before (a discoverable credential required, attestation `none`), in place; and it downgrades."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from passgate.store import tenants
from passgate.store.database import Database

PG_ADMIN_URL = os.environ.get("PASSGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own: the migration runs from 0009, not from the shared test schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'before-0010.db'}"
        return
    request.getfixturevalue("postgres_url")  # reachable (fails under CI=true, skips otherwise)
    import psycopg

    name = f"passgate_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alembic(database: Database, verb: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(files("passgate.store") / "migrations"))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, revision)


def test_0010_keeps_every_tenant_with_the_policy_it_had(empty_url: str) -> None:
    database = Database(empty_url)
    _alembic(database, "upgrade", "0009")
    tenant_id = str(uuid.uuid4())
    with database.engine.begin() as connection:  # the 0009 columns only, as 0009 stored them
        connection.execute(
            sa.text("INSERT INTO tenants (id, name, created_at) VALUES (:id, 'shop', 1)"), {"id": tenant_id}
        )
        connection.execute(
            sa.text(
                "INSERT INTO passkey_tenants (tenant_id, rp_id, rp_name, origins, user_verification,"
                " timeout_ms) VALUES (:id, 'shop.example', 'Shop', '[\"https://shop.example\"]',"
                " 'preferred', 60000)"
            ),
            {"id": tenant_id},
        )

    database.migrate()
    with database.engine.connect() as connection:
        tenant = tenants.get(connection, tenant_id)
    assert tenant is not None
    assert (tenant.rp_id, tenant.origins, tenant.user_verification) == (
        "shop.example",
        ["https://shop.example"],
        "preferred",
    )
    assert (tenant.resident_key, tenant.attestation) == ("required", "none")

    _alembic(database, "downgrade", "0009")
    with database.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM passkey_tenants")).scalar_one() == 1
        columns = {column["name"] for column in sa.inspect(connection).get_columns("passkey_tenants")}
    assert not columns & {"resident_key", "attestation"}
    assert "user_verification" in columns
    database.dispose()
