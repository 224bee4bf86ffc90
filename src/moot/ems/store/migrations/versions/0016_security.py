"""Security hardening (issue 13): throttles, moderator keys, who may see restricted meetings,
personal calendar feeds.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

- `throttles` counts the attempts of one key (a user name, an address, a meeting and an
  address) in its current window; an attempt is reserved by one conditional UPDATE, so
  parallel attempts on any number of EMS nodes never exceed the limit.
- `meetings.moderator_key_hash`: SHA-256 of the key its creator was given (the moderator
  link); the key itself is shown once and never stored.
- `meetings.restricted` and `meeting_access` (`restricted_to` in lower case, a row per name
  or group): lists show a restricted meeting only to those it names, in SQL. The calendar's
  covering index gets `restricted`, so its join stays index-only.
- `calendar_feeds`: the SHA-256 of each person's secret feed address.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttles",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
    )
    op.create_index("ix_throttles_window_start", "throttles", ["window_start"])

    # Plain ADD COLUMN (no batch rebuild): the SQLite search triggers of 0012 stay.
    op.add_column("meetings", sa.Column("moderator_key_hash", sa.String(64), nullable=True))
    op.add_column(
        "meetings",
        sa.Column("restricted", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "meeting_access",
        sa.Column(
            "meeting_id",
            sa.String(16),
            sa.ForeignKey("meetings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("entry", sa.String(200), primary_key=True),
    )
    op.create_index("ix_meeting_access_entry", "meeting_access", ["entry", "meeting_id"])
    meetings = sa.table(
        "meetings", sa.column("id", sa.String()), sa.column("restricted_to", sa.JSON())
    )
    bind = op.get_bind()
    access = sa.table("meeting_access", sa.column("meeting_id"), sa.column("entry"))
    for meeting_id, restricted_to in bind.execute(
        sa.select(meetings.c.id, meetings.c.restricted_to)
    ):
        entries = sorted({str(e).strip().lower() for e in restricted_to or [] if str(e).strip()})
        if entries:
            bind.execute(
                sa.text("UPDATE meetings SET restricted = :yes WHERE id = :id"),
                {"yes": True, "id": meeting_id},
            )
            bind.execute(
                sa.insert(access), [{"meeting_id": meeting_id, "entry": e} for e in entries]
            )
    op.drop_index("ix_meetings_calendar", "meetings")
    op.create_index(
        "ix_meetings_calendar",
        "meetings",
        ["id", "unlisted", "partition", "restricted", "name", "moderator", "status"],
    )

    op.create_table(
        "calendar_feeds",
        sa.Column("owner", sa.String(300), primary_key=True),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("partition", sa.String(64), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("calendar_feeds")
    op.drop_index("ix_meetings_calendar", "meetings")
    op.create_index(
        "ix_meetings_calendar",
        "meetings",
        ["id", "unlisted", "partition", "name", "moderator", "status"],
    )
    op.drop_index("ix_meeting_access_entry", "meeting_access")
    op.drop_table("meeting_access")
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("restricted")
        batch.drop_column("moderator_key_hash")
    op.drop_index("ix_throttles_window_start", "throttles")
    op.drop_table("throttles")
