"""Files attached to meetings.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

The bytes live in the table (docs/schema.md, "meeting_files"). On PostgreSQL the column is
stored EXTERNAL (out of line, not compressed): presentations are compressed already, and
a download reads the file in slices (store/files.py), which PostgreSQL then fetches without
detoasting the whole value for every slice.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_files",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "meeting_id",
            sa.String(16),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.String(200), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_meeting_files_meeting", "meeting_files", ["meeting_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("ALTER TABLE meeting_files ALTER COLUMN data SET STORAGE EXTERNAL"))


def downgrade() -> None:
    op.drop_index("ix_meeting_files_meeting", "meeting_files")
    op.drop_table("meeting_files")
