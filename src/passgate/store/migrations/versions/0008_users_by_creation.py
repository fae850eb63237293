"""users by (tenant, creation time): the decoy summary reads the newest accounts through an index

Revision ID: 0008
Revises: 0007

A named sign-in for a name with no account answers with decoys shaped like the newest real accounts'
passkeys (services/decoys.py, store/account_shapes.py): each process reads the newest 5,000 passkeys'
shapes at most every 15 minutes, ordered by `users.created_at`. Without an index that read scans and
sorts every account of the tenant: ~5 ms at 1,000 accounts, 1.4-2 s at 1,000,000 on PostgreSQL (a
parallel sequential scan and an on-disk sort, while the sign-in that triggered it waits). With this
index it walks the newest accounts backwards and stops: ~0.1 s at 1,000,000 (benchmarks/scale.py).
The index costs ~65 bytes an account and is written on sign-up; `created_at` never changes.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_tenant_created", "users", ["tenant_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_users_tenant_created", table_name="users")
