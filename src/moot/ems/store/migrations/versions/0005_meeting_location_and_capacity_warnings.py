"""Meetings' location (preferred or required), and the capacity warnings placement raises.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("location", sa.String(64), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("location_required", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "capacity_warnings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("meeting_id", sa.String(16), nullable=True),
        sa.Column("server_name", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
    )
    op.create_index("ix_capacity_warnings_at", "capacity_warnings", ["at"])


def downgrade() -> None:
    op.drop_table("capacity_warnings")
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("location_required")
        batch.drop_column("location")
