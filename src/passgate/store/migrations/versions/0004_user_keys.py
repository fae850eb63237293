"""canonical user keys (one name, one person) and administrator-set e-mail addresses

Revision ID: 0004
Revises: 0003

Every user gets `user_key`, the canonical form of its name (passgate.services.names), unique per
tenant, and `email`, empty until an administrator sets it (`passgate user email`).

Two existing accounts whose names now have the same key (e.g. `Alice` and `alice`, or a Cyrillic
look-alike) are not merged: the older keeps the key; each later one gets a key no name can produce
(the key, U+001F, its id), is disabled (its look-alike name must not reach apps behind the gate as
`Remote-User`), and is reported here, in the log and by `passgate doctor`. Rename it
(`passgate user rename ID NEW_NAME`), then enable it.
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("passgate.migrations")
CLASH_SEPARATOR = "\x1f"  # never part of a canonical key: control characters are refused or dropped


def upgrade() -> None:
    # NOT NULL with a default adds the column in place on SQLite too (rebuilding `users` there would
    # cascade-delete every passkey and session through the foreign keys).
    op.add_column("users", sa.Column("user_key", sa.String(length=300), nullable=False, server_default=""))
    op.add_column("users", sa.Column("email", sa.String(length=320), nullable=True))
    _fill_keys(op.get_bind())
    op.create_index("uq_users_tenant_key", "users", ["tenant_id", "user_key"], unique=True)


def _fill_keys(connection: sa.Connection) -> None:
    # The key is the one the running code computes: a migration that froze its own copy would drift.
    from passgate.services.names import stored_key

    users = sa.table(
        "users",
        sa.column("id", sa.String),
        sa.column("tenant_id", sa.String),
        sa.column("user_name", sa.String),
        sa.column("user_key", sa.String),
        sa.column("disabled", sa.Boolean),
        sa.column("created_at", sa.Float),
    )
    rows = connection.execute(
        sa.select(users.c.id, users.c.tenant_id, users.c.user_name).order_by(
            users.c.tenant_id, users.c.created_at, users.c.id
        )
    ).all()
    holders: dict[tuple[str, str], tuple[str, str]] = {}  # (tenant, key) -> (id, name) of the oldest
    for user_id, tenant_id, user_name in rows:
        key = stored_key(user_name)
        holder_id, holder = holders.setdefault((tenant_id, key), (user_id, user_name))
        values: dict[str, object] = {"user_key": key}
        if holder_id != user_id:
            values = {"user_key": f"{key}{CLASH_SEPARATOR}{user_id}", "disabled": True}
            log.warning(
                "user name clash: %r (id %s) looks like the older %r; it was disabled. Rename it with "
                "`passgate user rename %s NEW_NAME`, then `passgate user enable NEW_NAME`.",
                user_name,
                user_id,
                holder,
                user_id,
            )
        connection.execute(sa.update(users).where(users.c.id == user_id).values(**values))


def downgrade() -> None:
    op.drop_index("uq_users_tenant_key", table_name="users")
    op.drop_column("users", "email")  # in place (SQLite 3.35+): no rebuild, no cascade
    op.drop_column("users", "user_key")
