"""The server a scheduled meeting is booked on (resource booking), kept across EMS restarts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("booked_server", sa.String(64), nullable=True))
    op.create_index("ix_meetings_booked", "meetings", ["status", "end_at"])


def downgrade() -> None:
    op.drop_index("ix_meetings_booked", "meetings")
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("booked_server")
