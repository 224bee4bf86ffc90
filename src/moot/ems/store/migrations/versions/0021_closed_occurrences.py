"""Occurrences of a repeating meeting that a moderator closed early.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-07

"End for all" inside one occurrence of a repeating meeting ends that occurrence, not the
series: the meeting waits for its next occurrence, and this row says the occurrence closed
early (when, by whom), so that neither the meeting clock nor a late attendee opens it again
before its end. Keyed by the occurrence's start as the rule gives it (`original_start`),
which names it even when `occurrences` is written again after a change of schedule.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "closed_occurrences",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "meeting_id",
            sa.String(16),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("original_start", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=False),
        sa.Column("closed_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("meeting_id", "original_start", name="uq_closed_occurrence"),
    )


def downgrade() -> None:
    op.drop_table("closed_occurrences")
