"""passkey_tenants: resident-key requirement and attestation conveyance per tenant

Revision ID: 0010
Revises: 0009

A passkey-API tenant chooses the `residentKey` and `attestation` of its registration options
(W3C WebAuthn L3 §5.4.6 and §5.4.7). Existing tenants keep what they were sent before: a discoverable
credential required, attestation `none`. Columns are added in place with those defaults: no table is
rebuilt, so nothing cascades on SQLite.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "passkey_tenants",
        sa.Column("resident_key", sa.String(length=20), nullable=False, server_default="required"),
    )
    op.add_column(
        "passkey_tenants",
        sa.Column("attestation", sa.String(length=20), nullable=False, server_default="none"),
    )


def downgrade() -> None:
    op.drop_column("passkey_tenants", "attestation")  # in place (SQLite 3.35+): no rebuild, no cascade
    op.drop_column("passkey_tenants", "resident_key")
