"""Migration 0010 on SQLite and PostgreSQL: an existing passkey-API tenant keeps what its options said
before (a discoverable credential required, attestation `none`), in place; and it downgrades."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from migrating import alembic
from passgate.store import tenants
from passgate.store.database import Database


def test_0010_keeps_every_tenant_with_the_policy_it_had(empty_url: str) -> None:
    database = Database(empty_url)
    alembic(database, "upgrade", "0009")
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

    alembic(database, "downgrade", "0009")
    with database.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM passkey_tenants")).scalar_one() == 1
        columns = {column["name"] for column in sa.inspect(connection).get_columns("passkey_tenants")}
    assert not columns & {"resident_key", "attestation"}
    assert "user_verification" in columns
    database.dispose()
