"""Migration 0008 on SQLite and PostgreSQL: users are indexed by (tenant, creation time), the order in
which the decoy summary reads the newest accounts (store/account_shapes.py). benchmarks/scale.py shows
the summary's plan using it at 1,000,000 accounts."""

from __future__ import annotations

from sqlalchemy import inspect

from passgate.store.database import Database


def test_users_are_indexed_by_tenant_and_creation_time(database_url: str) -> None:
    database = Database(database_url)
    database.migrate()
    try:
        with database.engine.connect() as connection:
            indexes = {index["name"]: index for index in inspect(connection).get_indexes("users")}
        assert indexes["ix_users_tenant_created"]["column_names"] == ["tenant_id", "created_at"]
        assert not indexes["ix_users_tenant_created"]["unique"]
    finally:
        database.dispose()
