"""Versioned cluster configuration: every change of a scope (the cluster, one room server's
overrides) is a new row with that scope's full values; which version each server applied.
The column is `settings`, not `values`: a reserved word in SQL that hand-written queries
would have to quote.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("comment", sa.String(500), nullable=False),
    )
    op.create_index("ix_config_versions_scope", "config_versions", ["scope", "version"])
    op.create_table(
        "config_applied",
        sa.Column("server_name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("config_applied")
    op.drop_index("ix_config_versions_scope", table_name="config_versions")
    op.drop_table("config_versions")
