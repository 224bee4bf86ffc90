"""Migration 0017 on SQLite and PostgreSQL: the journal gets its index by kind (what the
EMS reads at every attend: a meeting's moderation events), and loses it on downgrade."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import command

from moot.ems.store.db import create_engine
from moot.ems.store.migrate import alembic_config, upgrade


def journal_indexes(database_url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                found = await conn.run_sync(lambda sync: sa.inspect(sync).get_indexes("journal"))
                return {str(index["name"]) for index in found}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_0017_adds_the_journals_index_by_kind_and_takes_it_back(
    empty_database_url: str,
) -> None:
    upgrade(empty_database_url, "0016")
    assert "ix_journal_meeting_kind" not in journal_indexes(empty_database_url)
    upgrade(empty_database_url, "0017")
    assert "ix_journal_meeting_kind" in journal_indexes(empty_database_url)
    command.downgrade(alembic_config(empty_database_url), "0016")
    assert journal_indexes(empty_database_url) >= {"ix_journal_meeting"}
    assert "ix_journal_meeting_kind" not in journal_indexes(empty_database_url)
