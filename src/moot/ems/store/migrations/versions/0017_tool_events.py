"""Meeting tools (issue 16): the journal read by kind.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

Tool events (polls, hands, moderator controls) are journal rows like chat lines, with
the tool's name in `kind` and the event in `body`; no new table. The EMS reads one kind
of one meeting on its own: the moderator controls at every attend (is the meeting locked,
was this person removed), the polls for their results. `ix_journal_meeting_kind` makes
that read touch only those rows, however long the chat.
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_journal_meeting_kind", "journal", ["meeting_id", "kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_journal_meeting_kind", table_name="journal")
