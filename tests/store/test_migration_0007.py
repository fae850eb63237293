"""Migration 0007 on SQLite and PostgreSQL: existing passkeys become `is_mfa = false` and existing audit
events get no actor or address, in place (nothing rebuilt, nothing cascaded); and it downgrades."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from migrating import alembic
from passgate.store.database import Database
from passgate.store.models import BUILTIN_TENANT


def test_0007_keeps_every_passkey_and_event(empty_url: str) -> None:
    database = Database(empty_url)
    alembic(database, "upgrade", "0006")
    user_id, credential_id = str(uuid.uuid4()), uuid.uuid4().bytes
    with database.engine.begin() as connection:  # the 0006 columns only, as 0006 stored them
        if connection.execute(sa.text("SELECT id FROM tenants")).first() is None:
            connection.execute(
                sa.text("INSERT INTO tenants (id, name, created_at) VALUES (:id, 'default', 0)"),
                {"id": BUILTIN_TENANT},
            )
        connection.execute(
            sa.text(
                "INSERT INTO users (id, tenant_id, user_name, user_key, display_name, user_handle, disabled,"
                " created_at, visits) VALUES (:id, :t, 'ann', 'ann', 'Ann', :h, false, 1, 0)"
            ),
            {"id": user_id, "t": BUILTIN_TENANT, "h": uuid.uuid4().bytes * 2},
        )
        connection.execute(
            sa.text(
                "INSERT INTO credentials (credential_id, tenant_id, user_id, public_key, algorithm,"
                " sign_count, transports, aaguid, backup_eligible, backup_state, uv_initialized,"
                " attestation_format, rp_id, name, created_at) VALUES (:c, :t, :u, :k, -7, 3, '', '',"
                " false, false, true, 'none', 'localhost', '', 1)"
            ),
            {"c": credential_id, "t": BUILTIN_TENANT, "u": user_id, "k": b"\xa5"},
        )
        connection.execute(
            sa.text(
                "INSERT INTO audit_events (at, tenant_id, user_id, kind, detail)"
                " VALUES (1, :t, :u, 'x', '{}')"
            ),
            {"t": BUILTIN_TENANT, "u": user_id},
        )

    database.migrate()
    with database.engine.connect() as connection:
        credential = connection.execute(sa.text("SELECT sign_count, is_mfa FROM credentials")).one()
        event = connection.execute(sa.text("SELECT kind, actor, source_ip FROM audit_events")).one()
    assert (credential.sign_count, bool(credential.is_mfa)) == (3, False)
    assert tuple(event) == ("x", None, None)

    alembic(database, "downgrade", "0006")
    with database.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM credentials")).scalar_one() == 1
        assert connection.execute(sa.text("SELECT count(*) FROM audit_events")).scalar_one() == 1
        columns = {column["name"] for column in sa.inspect(connection).get_columns("credentials")}
    assert "is_mfa" not in columns
    database.dispose()
