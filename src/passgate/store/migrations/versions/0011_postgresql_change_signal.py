"""PostgreSQL: a change signal for sessions and users

Revision ID: 0011
Revises: 0010

Each process keeps what it read of a session and its user while the database is unchanged
(`Database.version`). On SQLite it learns of other processes' commits from `PRAGMA data_version`; on
PostgreSQL nothing told it, so every signed-in request read the session again. These statement-level
triggers send a `NOTIFY passgate_changed` when a transaction that wrote `sessions` or `users` commits
(PostgreSQL folds a transaction's identical notifications into one), and each process's follower
listens for it. SQLite needs none of this.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("sessions", "users")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION passgate_changed() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('passgate_changed', ''); RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION passgate_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_changed ON {table}")
    op.execute("DROP FUNCTION passgate_changed()")
