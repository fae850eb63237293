"""passkey API: MFA credentials, and the audit log's actor and source address

Revision ID: 0007
Revises: 0006

`credentials.is_mfa` marks a second-factor credential registered through the passkey API's
`mfa/registration` (false for every existing one). `audit_events` gains the passkey API's `actor` (the
backend's own user id) and `source_ip`, which its `audit_logs` list searches, and an index for a
tenant's newest events. Columns are added in place (nullable or with a default): no table is rebuilt,
so nothing cascades on SQLite.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("credentials", sa.Column("is_mfa", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("audit_events", sa.Column("actor", sa.String(length=200), nullable=True))
    op.add_column("audit_events", sa.Column("source_ip", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_events_tenant_at", "audit_events", ["tenant_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_events_tenant_at", table_name="audit_events")
    op.drop_column("audit_events", "source_ip")  # in place (SQLite 3.35+): no rebuild, no cascade
    op.drop_column("audit_events", "actor")
    op.drop_column("credentials", "is_mfa")
