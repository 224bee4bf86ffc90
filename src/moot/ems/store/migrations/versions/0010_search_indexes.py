"""Search indexes: the calendar's occurrence range and, on PostgreSQL, the name search.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Measured with bench/search.py (docs/benchmarks.md, "Search"; docs/query-plans.md):

- `ix_occurrences_range` (start_at, meeting_id, end_at, original_start; on PostgreSQL
  INCLUDE id) holds every column `occurrences.in_range` reads, so a month is an index-only
  range scan; the condition on end_at is checked in the index, so the day before the
  range (read because a meeting lasts up to MAX_DURATION) costs no table reads. It starts
  with the columns of `ix_occurrences_start`, which it can replace.
- On PostgreSQL, trigram GIN indexes (pg_trgm) on meetings.name and meetings.moderator
  serve the search's `ILIKE '%text%'`, which no B-tree can. pg_trgm is a trusted extension
  (PostgreSQL 13+): the database's owner may create it without being a superuser. SQLite
  has no such index for LIKE; see docs/benchmarks.md for the FTS5 proposal.
- On PostgreSQL, statistics of 1,000 values (not 100) for those two columns. The planner
  estimates an ILIKE from the column's histogram: with 100 entries, a rare word that
  happens to be in one of them is taken for 1 % of the meetings, and the search walks
  ix_meetings_start in order instead of using the trigram indexes (3 s instead of 3 ms at
  1,000,000 meetings). ANALYZE of meetings then samples 300,000 rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_occurrences_range",
        "occurrences",
        ["start_at", "meeting_id", "end_at", "original_start"],
        postgresql_include=["id"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        for column in ("name", "moderator"):
            op.create_index(
                f"ix_meetings_{column}_trgm",
                "meetings",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )
            op.execute(sa.text(f"ALTER TABLE meetings ALTER COLUMN {column} SET STATISTICS 1000"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in ("name", "moderator"):
            op.execute(sa.text(f"ALTER TABLE meetings ALTER COLUMN {column} SET STATISTICS -1"))
        op.drop_index("ix_meetings_moderator_trgm", "meetings")
        op.drop_index("ix_meetings_name_trgm", "meetings")
    op.drop_index("ix_occurrences_range", "occurrences")
