"""Report views and server samples.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

- `server_samples`: each online room server's highest meetings, participants, CPU and memory
  per sampling interval (moot.ems.cluster.samples), and when the highest meetings and
  participants were seen, for the report of each server's peak.
- `ix_attendance_joined_at`: the reports read the stays of a date range.
- Views, one row per fact, neither aggregated nor cut to dates: a view cannot take the
  reader's time zone or date range, and days counted in UTC would be the wrong days for
  every other zone. Moot's reports (moot.ems.store.reports) group these rows by the day of
  the chosen zone; docs/schema.md shows operators how to use them.
  - `report_meetings`: every meeting that started, with how long it ran and how many people
    attended it;
  - `report_stays`: every stay, with its meeting's type, moderator and partition, and its
    end (a stay still open when its meeting ended ends with the meeting);
  - `report_presence`: the stays of one person in one meeting merged where they overlap or
    touch (after a failover a person has two open stays at once): the base of billing.
  Durations in seconds need one expression per database (SQLite and PostgreSQL have no
  common way to subtract timestamps), so each view has a definition per dialect.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

VIEWS = ("report_presence", "report_stays", "report_meetings")


def _seconds(dialect: str, end: str, start: str) -> str:
    if dialect == "postgresql":
        return f"CAST(ROUND(EXTRACT(EPOCH FROM {end} - {start})) AS INTEGER)"
    return f"CAST(ROUND((julianday({end}) - julianday({start})) * 86400) AS INTEGER)"


def view_definitions(dialect: str) -> dict[str, str]:
    """The SELECT of every view on `dialect` ("sqlite" or "postgresql"), by name."""
    never = (
        "TIMESTAMP '9999-12-31 00:00:00'"
        if dialect == "postgresql"
        else ("'9999-12-31 00:00:00.000000'")
    )
    meetings = f"""
SELECT m.id, m.name, m.type, m.moderator, m."partition", m.server_name,
       m.started_at, m.ended_at,
       {_seconds(dialect, "m.ended_at", "m.started_at")} AS seconds,
       (SELECT COUNT(DISTINCT a.user_name) FROM attendance a
        WHERE a.meeting_id = m.id) AS participants,
       (SELECT COUNT(*) FROM attendance a WHERE a.meeting_id = m.id) AS stays
FROM meetings m
WHERE m.started_at IS NOT NULL"""
    stays = f"""
SELECT a.id, a.meeting_id, m.type, m.moderator, m."partition", a.user_name, a.role,
       a.server_name, a.epoch, a.joined_at,
       COALESCE(a.left_at, m.ended_at) AS left_at,
       {_seconds(dialect, "COALESCE(a.left_at, m.ended_at)", "a.joined_at")} AS seconds
FROM attendance a JOIN meetings m ON m.id = a.meeting_id"""
    presence = f"""
WITH ordered AS (
  SELECT s.*,
         MAX(COALESCE(s.left_at, {never})) OVER (
           PARTITION BY s.meeting_id, s.user_name ORDER BY s.joined_at, s.id
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reached
  FROM report_stays s
), numbered AS (
  SELECT o.*,
         SUM(CASE WHEN o.reached IS NULL OR o.joined_at > o.reached THEN 1 ELSE 0 END) OVER (
           PARTITION BY o.meeting_id, o.user_name ORDER BY o.joined_at, o.id
           ROWS UNBOUNDED PRECEDING) AS island
  FROM ordered o
), merged AS (
  SELECT meeting_id, user_name, MIN(type) AS type, MIN(moderator) AS moderator,
         MIN("partition") AS "partition", COUNT(*) AS stays, MIN(joined_at) AS joined_at,
         CASE WHEN COUNT(left_at) < COUNT(*) THEN NULL ELSE MAX(left_at) END AS left_at
  FROM numbered
  GROUP BY meeting_id, user_name, island
)
SELECT p.meeting_id, p.user_name, p.type, p.moderator, p."partition", p.stays,
       p.joined_at, p.left_at, {_seconds(dialect, "p.left_at", "p.joined_at")} AS seconds
FROM merged p"""
    return {"report_meetings": meetings, "report_stays": stays, "report_presence": presence}


def upgrade() -> None:
    op.create_table(
        "server_samples",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("server_name", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("active_meetings", sa.Integer(), nullable=False),
        sa.Column("meetings_at", sa.DateTime(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("participants_at", sa.DateTime(), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("memory_percent", sa.Float(), nullable=False),
    )
    op.create_index("ix_server_samples_server_at", "server_samples", ["server_name", "at"])
    op.create_index("ix_server_samples_at", "server_samples", ["at"])
    op.create_index("ix_attendance_joined_at", "attendance", ["joined_at"])
    dialect = op.get_bind().dialect.name
    for name, select in view_definitions(dialect).items():  # report_presence reads report_stays
        op.execute(sa.text(f"CREATE VIEW {name} AS {select.strip()}"))


def downgrade() -> None:
    for name in VIEWS:
        op.execute(sa.text(f"DROP VIEW IF EXISTS {name}"))
    op.drop_index("ix_attendance_joined_at", "attendance")
    op.drop_index("ix_server_samples_at", "server_samples")
    op.drop_index("ix_server_samples_server_at", "server_samples")
    op.drop_table("server_samples")
