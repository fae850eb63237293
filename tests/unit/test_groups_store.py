"""Group memberships in the store, on SQLite and PostgreSQL (migration 0002)."""

from __future__ import annotations

from passgate.store import groups, users
from passgate.store.database import Database
from passgate.store.models import BUILTIN_TENANT


def test_memberships(database_url: str) -> None:
    database = Database(database_url)
    database.migrate()
    try:
        user = database.transact(
            lambda c: users.create(
                c,
                tenant_id=BUILTIN_TENANT,
                user_name=f"g-{id(c)}",
                user_key=f"g-{id(c)}",
                display_name="G",
                user_handle=b"h" * 8,
                at=1.0,
            )
        )
        assert database.transact(lambda c: groups.add(c, user.id, "ops")) is True
        assert database.transact(lambda c: groups.add(c, user.id, "ops")) is False  # already a member
        assert database.transact(lambda c: groups.add(c, user.id, "admins")) is True
        assert database.transact(lambda c: groups.for_user(c, user.id)) == ["admins", "ops"]
        assert database.transact(lambda c: groups.remove(c, user.id, "ops")) is True
        assert database.transact(lambda c: groups.remove(c, user.id, "ops")) is False
        database.transact(lambda c: users.remove(c, user.id))
        assert database.transact(lambda c: groups.for_user(c, user.id)) == []  # removed with the user
    finally:
        database.dispose()
