"""Migration 0004 on SQLite and PostgreSQL: existing users get their canonical key; names that became
look-alikes are not merged but reported (log, `doctor`), the later account disabled until renamed, and
nothing else is touched (no passkey or session lost to a table rebuild)."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from appkit import make_settings
from migrating import alembic
from passgate.errors import Conflict
from passgate.services import users as admin
from passgate.services.context import Context
from passgate.store.database import Database
from passgate.store.models import BUILTIN_TENANT, credentials, sessions, tenants, users

LEGACY = [  # (name, created_at): as 0003 let them be stored
    ("Alice", 1.0),
    ("bob", 2.0),
    ("alice", 3.0),  # case only: clashes with Alice
    ("\u0430lice", 4.0),  # Cyrillic a: clashes with Alice
    ("carol\u034f", 5.0),  # invisible CGJ: today refused, then stored; its key is carol's
    ("dave \U0001f642", 6.0),  # a symbol PRECIS refuses: kept, keyed leniently
]


def test_existing_names_get_keys_and_clashes_are_reported(
    empty_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(empty_url)
    alembic(database, "upgrade", "0003")
    ids = {name: str(uuid.uuid4()) for name, _ in LEGACY}
    with database.engine.begin() as connection:
        if connection.execute(select(tenants.c.id)).first() is None:
            connection.execute(tenants.insert().values(id=BUILTIN_TENANT, name="default", created_at=0.0))
        for name, at in LEGACY:
            connection.execute(  # the 0003 columns only
                users.insert().values(
                    id=ids[name],
                    tenant_id=BUILTIN_TENANT,
                    user_name=name,
                    display_name=name,
                    user_handle=uuid.uuid4().bytes * 2,
                    disabled=False,
                    created_at=at,
                    visits=0,
                )
            )
        connection.execute(credentials.insert().values(_credential(ids["alice"])))
        connection.execute(sessions.insert().values(_session(ids["alice"])))

    with caplog.at_level(logging.WARNING, logger="passgate.migrations"):
        database.migrate()
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2 and all("Alice" in text and "rename" in text for text in warnings), warnings

    with database.engine.connect() as connection:
        rows = {row.user_name: row for row in connection.execute(select(users))}
        kept = {
            "credentials": connection.execute(select(credentials.c.user_id)).scalars().all(),
            "sessions": connection.execute(select(sessions.c.user_id)).scalars().all(),
        }
    assert rows["Alice"].user_key == "alice" and not rows["Alice"].disabled  # the oldest keeps the key
    assert rows["bob"].user_key == "bob" and rows["bob"].email is None
    assert rows["carol\u034f"].user_key == "carol"
    assert rows["dave \U0001f642"].user_key.startswith("dave ")
    for later in ("alice", "\u0430lice"):  # not merged: a key of their own that no name produces, disabled
        assert rows[later].user_key == f"alice\x1f{ids[later]}" and rows[later].disabled
    assert kept == {"credentials": [ids["alice"]], "sessions": [ids["alice"]]}  # nothing cascaded away

    clashes = database.transact(admin.clashes, write=False)
    assert clashes is not None
    assert {(clash.user_name, clash.looks_like) for clash in clashes} == {
        ("alice", "Alice"),
        ("\u0430lice", "Alice"),
    }

    # Resolving: the admin finds the later account by id (its name finds Alice), renames, enables.
    ctx = Context.build(make_settings(tmp_path, database_url=empty_url), database)
    with pytest.raises(Conflict):
        admin.set_disabled(ctx, ids["alice"], False)
    assert admin.rename(ctx, ids["alice"], "alice2").user_key == "alice2"
    admin.set_disabled(ctx, "ALICE2", False)
    assert {clash.user_name for clash in database.transact(admin.clashes, write=False) or []} == {
        "\u0430lice"
    }
    database.dispose()


def _credential(user_id: str) -> dict[str, object]:
    return {
        "credential_id": uuid.uuid4().bytes * 2,
        "tenant_id": BUILTIN_TENANT,
        "user_id": user_id,
        "public_key": b"\xa5",
        "algorithm": -7,
        "sign_count": 0,
        "transports": "usb",
        "aaguid": "00000000-0000-0000-0000-000000000000",
        "backup_eligible": False,
        "backup_state": False,
        "uv_initialized": True,
        "attestation_format": "none",
        "rp_id": "localhost",
        "name": "",
        "created_at": 1.0,
    }


def _session(user_id: str) -> dict[str, object]:
    at = time.time()
    return {
        "id": uuid.uuid4().hex,
        "tenant_id": BUILTIN_TENANT,
        "user_id": user_id,
        "created_at": at,
        "last_seen_at": at,
        "auth_time": at,
        "user_verified": True,
        "amr": "hwk",
        "user_agent": "",
        "ip": "",
        "expires_at": at + 3600,
    }
