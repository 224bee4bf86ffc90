"""Room servers, meetings and attendance.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "room_servers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("max_active_meetings", sa.Integer(), nullable=False),
        sa.Column("max_users_per_meeting", sa.Integer(), nullable=False),
        sa.Column("instant_meetings", sa.Integer(), nullable=True),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("draining", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "meetings",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("moderator", sa.String(200), nullable=False),
        sa.Column("expected_participants", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("end_at", sa.DateTime(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("instant", sa.Boolean(), nullable=False),
        sa.Column("recurrence", sa.Text(), nullable=True),
        sa.Column("record", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("server_name", sa.String(64), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_meetings_start", "meetings", ["start_at", "id"])
    op.create_index("ix_meetings_status_start", "meetings", ["status", "start_at"])
    op.create_index("ix_meetings_name", "meetings", ["name", "id"])
    op.create_index("ix_meetings_moderator", "meetings", ["moderator", "id"])
    op.create_index("ix_meetings_server", "meetings", ["server_name", "status"])
    op.create_table(
        "attendance",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "meeting_id",
            sa.String(16),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("server_name", sa.String(64), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_attendance_meeting_id", "attendance", ["meeting_id"])


def downgrade() -> None:
    op.drop_table("attendance")
    op.drop_table("meetings")
    op.drop_table("room_servers")
