"""The journal writer on SQLite and PostgreSQL: stored once, fenced by epoch, in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from moot.ems.cluster.journal import JournalWriter, _Pending
from moot.ems.cluster.registry import LiveServer
from moot.ems.store import journal as journal_store
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.models import MeetingRow
from moot.protocol.control import JournalAppend, JournalEntry, ServerLimits

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def appended(event_id: str, epoch: int, text: str = "hi") -> JournalAppend:
    return JournalAppend(
        meeting_id="m1",
        epoch=epoch,
        entry=JournalEntry(
            event_id=event_id, sender="Ann", kind="chat", body={"text": text}, at=NOW
        ),
    )


def test_write_fences_dedupes_and_keeps_order(migrated_url: str) -> None:
    async def scenario() -> None:
        engine = create_engine(migrated_url)
        sessions = session_factory(engine)
        try:
            async with sessions() as session:
                session.add(
                    MeetingRow(
                        id="m1",
                        name="n",
                        type="collaboration",
                        moderator="Ann",
                        expected_participants=2,
                        start_at=NOW,
                        end_at=NOW + timedelta(hours=1),
                        duration_minutes=60,
                        instant=True,
                        record=False,
                        tools=[],
                        status="in_progress",
                        server_name="a",
                        epoch=2,
                    )
                )
                await session.commit()
            writer = JournalWriter(sessions)
            host = LiveServer(
                name="a",
                url="http://a",
                limits=ServerLimits(max_active_meetings=1, max_users_per_meeting=1),
            )
            other = LiveServer(name="b", url="http://b", limits=host.limits)
            batch = [
                _Pending(host, appended("e1", 2, "first")),
                _Pending(host, appended("e0", 1, "from the old epoch")),
                _Pending(other, appended("e9", 2, "from a server that does not host it")),
                _Pending(host, appended("e2", 2, "second")),
                _Pending(host, appended("e1", 2, "first, resent")),
            ]
            outcome = await writer._write(batch)
            assert [error == "" for _, error in outcome] == [True, False, False, True, True]
            async with sessions() as session:
                rows = await journal_store.history_of(session, "m1")
            assert [(r.event_id, r.body["text"]) for r in rows] == [
                ("e1", "first"),
                ("e2", "second"),
            ]
        finally:
            await engine.dispose()

    asyncio.run(scenario())
