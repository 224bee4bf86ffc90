"""Recorded media: the audio, video and screen files of a recorded meeting.

Revision ID: 0024
Revises: 0021
Create Date: 2026-12-08

Each room server's Janus records the media of the meetings it hosts; the room server turns
each stream into an Opus/Ogg or VP8/WebM file and sends it to the EMS, which keeps it here,
by meeting and epoch (the recording segment it belongs to).
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_media",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "meeting_id",
            sa.String(16),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("track", sa.String(16), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("meeting_id", "epoch", "name", name="uq_recording_media_name"),
    )


def downgrade() -> None:
    op.drop_table("recording_media")
