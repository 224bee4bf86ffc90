"""Calendar and search fast paths.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Measured with bench/search.py (docs/benchmarks.md, "Search"; docs/query-plans.md):

- `ix_meetings_calendar` (id, unlisted, partition, name, moderator, status), both
  databases: what the calendar shows of a meeting, so that joining a month's occurrences
  to their meetings is an index-only lookup per occurrence.
- `ix_meetings_name_lower`, `ix_meetings_moderator_lower` on lower(name), lower(moderator)
  (on PostgreSQL with text_pattern_ops, whatever the database's collation): a search of one
  or two characters, which no trigram index serves, finds the names and moderators that
  start with it through these B-trees.
- SQLite: `meetings_search`, an FTS5 table with the trigram tokenizer over each meeting's
  name and moderator, kept by triggers on insert, update and delete of `meetings` and
  filled here from the meetings there are. It holds the meeting's id (looked up through
  the index itself), not its rowid, which VACUUM and table rebuilds may change. A later
  migration that rebuilds `meetings` on SQLite (alembic batch mode) drops the triggers and
  must create them again (`SQLITE_TRIGGERS`). On PostgreSQL the trigram indexes of 0010
  serve the search.

At 1,000,000 meetings it takes about 5 s on PostgreSQL (writes to meetings wait meanwhile)
and 30 s on SQLite, most of it filling the FTS table (measured 2026-12-02).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The FTS row of a meeting, found through the trigram index on meeting_id, then exactly.
_BY_OLD_ID = (
    "meetings_search MATCH ('meeting_id : \"' || replace(old.id, '\"', '\"\"') || '\"') "
    "AND meeting_id = old.id"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER meetings_search_insert AFTER INSERT ON meetings BEGIN "
    "INSERT INTO meetings_search (meeting_id, name, moderator) "
    "VALUES (new.id, new.name, new.moderator); END",
    f"CREATE TRIGGER meetings_search_delete AFTER DELETE ON meetings BEGIN "
    f"DELETE FROM meetings_search WHERE {_BY_OLD_ID}; END",
    f"CREATE TRIGGER meetings_search_update AFTER UPDATE OF id, name, moderator ON meetings "
    f"BEGIN UPDATE meetings_search SET meeting_id = new.id, name = new.name, "
    f"moderator = new.moderator WHERE {_BY_OLD_ID}; END",
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_index(
        "ix_meetings_calendar",
        "meetings",
        ["id", "unlisted", "partition", "name", "moderator", "status"],
    )
    ops = " text_pattern_ops" if postgresql else ""
    for column in ("name", "moderator"):
        op.execute(
            sa.text(f"CREATE INDEX ix_meetings_{column}_lower ON meetings (lower({column}){ops})")
        )
    if postgresql:
        return
    op.execute(
        sa.text(
            "CREATE VIRTUAL TABLE meetings_search USING fts5("
            "meeting_id, name, moderator, tokenize='trigram')"
        )
    )
    op.execute(
        sa.text(
            "INSERT INTO meetings_search (meeting_id, name, moderator) "
            "SELECT id, name, moderator FROM meetings"
        )
    )
    for trigger in SQLITE_TRIGGERS:
        op.execute(sa.text(trigger))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("insert", "update", "delete"):
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS meetings_search_{trigger}"))
        op.execute(sa.text("DROP TABLE IF EXISTS meetings_search"))
    op.drop_index("ix_meetings_moderator_lower", "meetings")
    op.drop_index("ix_meetings_name_lower", "meetings")
    op.drop_index("ix_meetings_calendar", "meetings")
