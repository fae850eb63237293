"""OpenID Connect provider: clients registered by command, grants, codes, tokens and consents

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_clients",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=100), nullable=True),
        sa.Column("metadata_json", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oidc_clients")),
    )
    op.create_table(
        "oidc_codes",
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(length=500), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=10), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oidc_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_oidc_codes")),
    )
    with op.batch_alter_table("oidc_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_codes_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_oidc_codes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "oidc_consents",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=1000), nullable=False),
        sa.Column("granted_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oidc_consents_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "client_id", name=op.f("pk_oidc_consents")),
    )
    op.create_table(
        "oidc_grants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("scope", sa.String(length=1000), nullable=False),
        sa.Column("auth_time", sa.Float(), nullable=False),
        sa.Column("amr", sa.String(length=100), nullable=False),
        sa.Column("acr", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oidc_grants_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_grants")),
    )
    with op.batch_alter_table("oidc_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_grants_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oidc_grants_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_oidc_grants_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oidc_grants_user_id"), ["user_id"], unique=False)

    op.create_table(
        "oidc_tokens",
        sa.Column("access_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("refresh_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=1000), nullable=False),
        sa.Column("issued_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("refreshed_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["oidc_grants.id"],
            name=op.f("fk_oidc_tokens_grant_id_oidc_grants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("access_hash", name=op.f("pk_oidc_tokens")),
        sa.UniqueConstraint("refresh_hash", name=op.f("uq_oidc_tokens_refresh_hash")),
    )
    with op.batch_alter_table("oidc_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_tokens_grant_id"), ["grant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oidc_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_tokens_grant_id"))

    op.drop_table("oidc_tokens")
    with op.batch_alter_table("oidc_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_grants_user_id"))
        batch_op.drop_index(batch_op.f("ix_oidc_grants_session_id"))
        batch_op.drop_index(batch_op.f("ix_oidc_grants_expires_at"))
        batch_op.drop_index(batch_op.f("ix_oidc_grants_client_id"))

    op.drop_table("oidc_grants")
    op.drop_table("oidc_consents")
    with op.batch_alter_table("oidc_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_codes_user_id"))
        batch_op.drop_index(batch_op.f("ix_oidc_codes_expires_at"))

    op.drop_table("oidc_codes")
    op.drop_table("oidc_clients")
