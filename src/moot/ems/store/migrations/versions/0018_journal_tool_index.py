"""The journal's index by kind holds only the tools' rows, not the chat's.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

0017 indexed every journal row by (meeting, kind, id) so that the EMS reads one tool's
events of a meeting (the moderator controls at attend, the polls) without the chat. But
every chat line, the busiest write of the store, then updated that index too, for rows it
is never read for. A partial index (`WHERE kind <> 'chat'`, on SQLite and PostgreSQL)
holds only the tools' rows; the readers say `kind <> 'chat'` so both planners use it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

TOOLS_ONLY = sa.text("kind <> 'chat'")


def upgrade() -> None:
    op.drop_index("ix_journal_meeting_kind", table_name="journal")
    op.create_index(
        "ix_journal_tool_events",
        "journal",
        ["meeting_id", "kind", "id"],
        sqlite_where=TOOLS_ONLY,
        postgresql_where=TOOLS_ONLY,
    )


def downgrade() -> None:
    op.drop_index("ix_journal_tool_events", table_name="journal")
    op.create_index("ix_journal_meeting_kind", "journal", ["meeting_id", "kind", "id"])
