"""A draining room server's deadline: when its remaining meetings move elsewhere.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("room_servers") as batch:
        batch.add_column(sa.Column("drain_deadline", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("room_servers") as batch:
        batch.drop_column("drain_deadline")
