"""Recorded media files (audio, video, screen) of a recording's segments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from moot.ems.store.models import RecordingMediaRow, RecordingSegmentRow

__all__ = ["RecordingMediaRow", "media_file", "media_of", "store_media"]


async def store_media(
    session: AsyncSession,
    *,
    server_name: str,
    meeting_id: str,
    epoch: int,
    name: str,
    user: str,
    kind: str,
    track: str,
    content_type: str,
    started_at: datetime,
    data: bytes,
) -> str:
    """Keep a media file of the segment `server_name` recorded at `epoch`; "" when stored
    (or stored before: a room server that sends a file again), else why not."""
    segment = await session.scalar(
        select(RecordingSegmentRow.id).where(
            RecordingSegmentRow.meeting_id == meeting_id,
            RecordingSegmentRow.epoch == epoch,
            RecordingSegmentRow.server_name == server_name,
        )
    )
    if segment is None:
        return "no recording segment of this meeting was hosted there at that epoch"
    known = await session.scalar(
        select(RecordingMediaRow.id).where(
            RecordingMediaRow.meeting_id == meeting_id,
            RecordingMediaRow.epoch == epoch,
            RecordingMediaRow.name == name,
        )
    )
    if known is None:
        session.add(
            RecordingMediaRow(
                meeting_id=meeting_id,
                epoch=epoch,
                name=name,
                user_name=user,
                kind=kind,
                track=track,
                content_type=content_type,
                started_at=started_at,
                size=len(data),
                data=data,
            )
        )
    return ""


async def media_of(session: AsyncSession, meeting_id: str) -> list[RecordingMediaRow]:
    """The meeting's media files (without their bytes), by start."""
    return list(
        await session.scalars(
            select(RecordingMediaRow)
            .where(RecordingMediaRow.meeting_id == meeting_id)
            .order_by(RecordingMediaRow.started_at, RecordingMediaRow.id)
        )
    )


async def media_file(
    session: AsyncSession, meeting_id: str, media_id: int
) -> RecordingMediaRow | None:
    """One file, bytes included."""
    row: RecordingMediaRow | None = await session.scalar(
        select(RecordingMediaRow)
        .where(RecordingMediaRow.meeting_id == meeting_id, RecordingMediaRow.id == media_id)
        .options(undefer(RecordingMediaRow.data))
    )
    return row
