"""Migration 0018 on SQLite and PostgreSQL: the journal's index by kind holds only the tools'
rows (a chat line no longer updates it), the EMS's reads of one tool use it, and a
downgrade brings 0017's index back."""

from __future__ import annotations

import asyncio

from alembic import command

from moot.ems.store.db import create_engine
from moot.ems.store.migrate import alembic_config, upgrade
from tests.integration.test_migration_0017 import journal_indexes

READ = (
    "SELECT id FROM journal WHERE journal.meeting_id = 'm1' AND journal.kind = 'moderation' "
    "AND kind <> 'chat' ORDER BY journal.id"
)


def plan(database_url: str) -> str:
    """How the database reads one tool's events of a meeting (tool_events.events_of)."""

    async def read() -> str:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                if engine.dialect.name == "sqlite":
                    rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + READ)
                    return " ".join(str(r[-1]) for r in rows)
                await conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table
                rows = await conn.exec_driver_sql("EXPLAIN " + READ)
                return " ".join(str(r[0]) for r in rows)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_0018_indexes_only_the_tools_rows_and_the_reads_use_it(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    indexes = journal_indexes(empty_database_url)
    assert "ix_journal_tool_events" in indexes
    assert "ix_journal_meeting_kind" not in indexes
    assert "ix_journal_tool_events" in plan(empty_database_url)
    command.downgrade(alembic_config(empty_database_url), "0017")
    indexes = journal_indexes(empty_database_url)
    assert "ix_journal_meeting_kind" in indexes
    assert "ix_journal_tool_events" not in indexes
