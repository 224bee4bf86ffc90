"""Migration 0016 on a database that has meetings already, on SQLite and PostgreSQL: the
restricted ones are found restricted (meeting_access filled from restricted_to), and the
search on SQLite still works (its triggers on meetings outlive the new columns)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.meetings import MeetingQuery, Reader, list_meetings
from moot.ems.store.migrate import upgrade


def test_restricted_meetings_made_before_0016_stay_restricted(empty_database_url: str) -> None:
    database_url = empty_database_url
    upgrade(database_url, "0015")
    start = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)

    async def scenario() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as conn:
                for meeting_id, name, restricted in (
                    ("aaaaaaaaaa", "Board only", '["HR-Board", "bob"]'),
                    ("bbbbbbbbbb", "Everyone", "[]"),
                ):
                    await conn.execute(
                        sa.text(
                            "INSERT INTO meetings (id, name, type, moderator, "
                            "expected_participants, start_at, end_at, duration_minutes, instant,"
                            " location, location_required, timezone, unlisted, restricted_to, "
                            "record, tools, status, epoch, created_at, updated_at) VALUES (:id,"
                            " :name, 'collaboration', 'carol', 4, :start, :end, 60, false, '',"
                            " false, 'UTC', false, :restricted, false, '[]', 'scheduled', 0, "
                            ":start, :start)"
                        ),
                        {
                            "id": meeting_id,
                            "name": name,
                            "start": start,
                            "end": start + timedelta(hours=1),
                            "restricted": restricted,
                        },
                    )
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    upgrade(database_url)

    async def read() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                access = (
                    await conn.execute(sa.text("SELECT meeting_id, entry FROM meeting_access"))
                ).all()
                assert sorted(access) == [("aaaaaaaaaa", "bob"), ("aaaaaaaaaa", "hr-board")]
            async with session_factory(engine)() as session:

                async def names(reader: Reader, q: str | None = None) -> list[str]:
                    rows, _ = await list_meetings(session, MeetingQuery(q=q, reader=reader))
                    return sorted(r.name for r in rows)

                anonymous = Reader(partition=None)
                bob = Reader(partition=None, name="bob", entries=frozenset({"bob"}))
                assert await names(anonymous) == ["Everyone"]
                assert await names(bob) == ["Board only", "Everyone"]
                assert await names(bob, q="board") == ["Board only"]  # the search still finds it
        finally:
            await engine.dispose()

    asyncio.run(read())
