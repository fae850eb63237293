"""challenges: no index on the expiry time

Revision ID: 0009
Revises: 0008

Every sign-in writes a challenge row and deletes it again; each index on the table is one more page
written to the write-ahead log by both (measured on SQLite: ~15 µs of a sign-in's CPU). The index on
`expires_at` served only the once-a-minute sweep of expired challenges, which now reads the table:
it holds only ceremonies begun within the challenge lifetime, bounded by the per-address rate limits.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_challenges_expires_at", table_name="challenges")


def downgrade() -> None:
    op.create_index("ix_challenges_expires_at", "challenges", ["expires_at"], unique=False)
