"""Meeting Center: time zone, unlisted and restricted meetings, occurrences and exceptions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Existing meetings get one occurrence each (their first): before this revision repeat rules
were stored only, and the EMS writes a meeting's occurrences again whenever it changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))
        batch.add_column(sa.Column("series_end_at", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("unlisted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("restricted_to", sa.JSON(), nullable=False, server_default="[]"))
    op.execute("UPDATE meetings SET series_end_at = end_at WHERE recurrence IS NULL")
    op.create_index(
        "uq_meetings_unlisted_name",
        "meetings",
        ["name"],
        unique=True,
        sqlite_where=sa.text("unlisted"),
        postgresql_where=sa.text("unlisted"),
    )
    op.create_table(
        "meeting_exceptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "meeting_id",
            sa.String(16),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("original_start", sa.DateTime(), nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("new_start", sa.DateTime(), nullable=True),
        sa.Column("new_duration_minutes", sa.Integer(), nullable=True),
        sa.UniqueConstraint("meeting_id", "original_start", name="uq_meeting_exception"),
    )
    op.create_table(
        "occurrences",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "meeting_id",
            sa.String(16),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("original_start", sa.DateTime(), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("end_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("meeting_id", "original_start", name="uq_occurrence"),
    )
    op.create_index("ix_occurrences_start", "occurrences", ["start_at", "meeting_id"])
    op.execute(
        "INSERT INTO occurrences (meeting_id, original_start, start_at, end_at) "
        "SELECT id, start_at, start_at, end_at FROM meetings"
    )


def downgrade() -> None:
    op.drop_table("occurrences")
    op.drop_table("meeting_exceptions")
    op.drop_index("uq_meetings_unlisted_name", "meetings")
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("restricted_to")
        batch.drop_column("unlisted")
        batch.drop_column("series_end_at")
        batch.drop_column("timezone")
