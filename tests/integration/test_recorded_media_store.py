"""Recorded media reaching the EMS, on SQLite and PostgreSQL: parts put together, stored
once, fenced by the segment's server and epoch, listed with the segment."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

from moot.ems.cluster.recorded_media import MediaReceiver
from moot.ems.cluster.registry import LiveServer
from moot.ems.store import recordings as recording_store
from moot.ems.store.db import create_engine, session_factory
from moot.ems.store.models import MeetingRow
from moot.ems.store.recording_media import media_file
from moot.protocol.control import RecordedMedia, ServerLimits

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def part(name: str, number: int, data: bytes, *, last: bool, epoch: int = 2) -> RecordedMedia:
    return RecordedMedia(
        meeting_id="m1",
        epoch=epoch,
        name=name,
        user="Bob",
        kind="camera",
        track="video",
        content_type="video/webm",
        started_at=NOW + timedelta(seconds=3),
        part=number,
        last=last,
        data=base64.b64encode(data).decode(),
    )


def test_media_is_put_together_stored_once_and_fenced(migrated_url: str) -> None:
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
                        record=True,
                        tools=[],
                        status="in_progress",
                        server_name="a",
                        epoch=2,
                    )
                )
                await session.flush()
                await recording_store.begin_segment(
                    session, meeting_id="m1", epoch=2, server_name="a", at=NOW, previous_ended=""
                )
                await session.commit()
            host = LiveServer(
                name="a",
                url="http://a",
                limits=ServerLimits(max_active_meetings=1, max_users_per_meeting=1),
            )
            other = LiveServer(name="b", url="http://b", limits=host.limits)
            receiver = MediaReceiver(sessions)
            # In parts; a part that comes out of order drops what came before it.
            await receiver.receive(host, part("v.webm", 0, b"\x1a\x45", last=False))
            await receiver.receive(host, part("v.webm", 2, b"??", last=False))
            await receiver.receive(host, part("v.webm", 0, b"\x1a\x45", last=False))
            await receiver.receive(host, part("v.webm", 1, b"\xdf\xa3", last=True))
            # Sent again whole (its acknowledgement was lost): stored once.
            await receiver.receive(host, part("v.webm", 0, b"\x1a\x45\xdf\xa3", last=True))
            # Not the segment's server, or not its epoch: refused.
            await receiver.receive(other, part("w.webm", 0, b"x", last=True))
            await receiver.receive(host, part("x.webm", 0, b"x", last=True, epoch=1))
            async with sessions() as session:
                [segment] = await recording_store.segments_of(session, "m1", NOW)
                [media] = segment.media
                assert (media.name, media.user_name, media.size) == ("v.webm", "Bob", 4)
                assert media.started_at == NOW + timedelta(seconds=3)
                stored = await media_file(session, "m1", media.id)
                assert stored is not None and stored.data == b"\x1a\x45\xdf\xa3"
        finally:
            await engine.dispose()

    asyncio.run(scenario())
