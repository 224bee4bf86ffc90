"""Recording segments, and a recording put together from them for playback."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import (
    AttendanceRow,
    JournalRow,
    RecordingMediaRow,
    RecordingSegmentRow,
)
from moot.ems.store.recording_media import media_of

__all__ = ["RecordedSegment", "RecordingSegmentRow", "begin_segment", "end_segments", "segments_of"]


async def end_segments(session: AsyncSession, meeting_id: str, at: datetime, reason: str) -> None:
    """The meeting's open segment (if any) ends: it moved, or the meeting ended."""
    await session.execute(
        update(RecordingSegmentRow)
        .where(RecordingSegmentRow.meeting_id == meeting_id, RecordingSegmentRow.ended_at.is_(None))
        .values(ended_at=at, end_reason=reason)
    )


async def begin_segment(
    session: AsyncSession,
    *,
    meeting_id: str,
    epoch: int,
    server_name: str,
    at: datetime,
    previous_ended: str,
) -> None:
    """The meeting records on `server_name` from `at`; the segment before ends there."""
    await end_segments(session, meeting_id, at, previous_ended)
    session.add(
        RecordingSegmentRow(
            meeting_id=meeting_id, epoch=epoch, server_name=server_name, started_at=at
        )
    )


@dataclass(frozen=True, slots=True)
class RecordedSegment:
    segment: RecordingSegmentRow
    journal: list[JournalRow]
    # (when, user, "joined" | "left") within the segment's time
    roster: list[tuple[datetime, str, str]]
    # Its audio, video and screen files (without their bytes), by start.
    media: list[RecordingMediaRow] = field(default_factory=list)


async def segments_of(
    session: AsyncSession, meeting_id: str, now: datetime
) -> list[RecordedSegment]:
    """Every segment in order, with the events it recorded."""
    segments = list(
        await session.scalars(
            select(RecordingSegmentRow)
            .where(RecordingSegmentRow.meeting_id == meeting_id)
            .order_by(RecordingSegmentRow.epoch)
        )
    )
    if not segments:
        return []
    journal = list(
        await session.scalars(
            select(JournalRow).where(JournalRow.meeting_id == meeting_id).order_by(JournalRow.id)
        )
    )
    attendance = list(
        await session.scalars(select(AttendanceRow).where(AttendanceRow.meeting_id == meeting_id))
    )
    media = await media_of(session, meeting_id)
    changes = sorted(
        [(a.joined_at, a.user_name, "joined") for a in attendance]
        + [(a.left_at, a.user_name, "left") for a in attendance if a.left_at is not None]
    )
    recorded = []
    for segment in segments:
        until = segment.ended_at or now
        recorded.append(
            RecordedSegment(
                segment=segment,
                journal=[j for j in journal if j.epoch == segment.epoch],
                roster=[c for c in changes if segment.started_at <= c[0] < until],
                media=[m for m in media if m.epoch == segment.epoch],
            )
        )
    return recorded
