"""Messages to all users: what an administrator sent, and until when it shows.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sent_by", sa.String(200), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    # Every EMS node reads the current ones every second: those not yet expired.
    op.create_index("ix_broadcasts_expires_at", "broadcasts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_broadcasts_expires_at", "broadcasts")
    op.drop_table("broadcasts")
