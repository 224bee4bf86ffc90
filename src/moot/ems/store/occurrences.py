"""Occurrences (when meetings happen) and the exceptions of repeating meetings.

A calendar range is answered from `occurrences` with one index range scan on `start_at`:
no meeting lasts longer than MAX_DURATION, so every occurrence that overlaps [from, to)
starts in [from - MAX_DURATION, to).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.api.schemas import MAX_DURATION_MINUTES
from moot.ems.store.meetings import where_visible
from moot.ems.store.models import MeetingExceptionRow, MeetingRow, OccurrenceRow

MAX_DURATION = timedelta(minutes=MAX_DURATION_MINUTES)


@dataclass(frozen=True, slots=True)
class When:
    original_start: datetime
    start: datetime
    end: datetime


async def replace(session: AsyncSession, meeting_id: str, whens: Sequence[When]) -> None:
    """The meeting's occurrences are these from now on."""
    await session.execute(delete(OccurrenceRow).where(OccurrenceRow.meeting_id == meeting_id))
    if whens:
        await session.execute(
            insert(OccurrenceRow),
            [
                {
                    "meeting_id": meeting_id,
                    "original_start": w.original_start,
                    "start_at": w.start,
                    "end_at": w.end,
                }
                for w in whens
            ],
        )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def in_range(
    session: AsyncSession,
    range_from: datetime,
    range_to: datetime,
    *,
    q: str | None = None,
    partition: str | None = "*",
    limit: int = 2000,
) -> list[tuple[OccurrenceRow, MeetingRow]]:
    """Listed meetings' occurrences that overlap [range_from, range_to), by start."""
    stmt = (
        select(OccurrenceRow, MeetingRow)
        .join(MeetingRow, MeetingRow.id == OccurrenceRow.meeting_id)
        .where(
            OccurrenceRow.start_at >= range_from - MAX_DURATION,
            OccurrenceRow.start_at < range_to,
            OccurrenceRow.end_at > range_from,
            MeetingRow.unlisted.is_(False),
        )
        .order_by(OccurrenceRow.start_at, OccurrenceRow.meeting_id)
        .limit(limit)
    )
    stmt = where_visible(stmt, partition)
    if q:
        pattern = f"%{_escape_like(q)}%"
        stmt = stmt.where(
            or_(
                MeetingRow.name.ilike(pattern, escape="\\"),
                MeetingRow.moderator.ilike(pattern, escape="\\"),
            )
        )
    rows: list[tuple[OccurrenceRow, MeetingRow]] = [
        (row[0], row[1]) for row in await session.execute(stmt)
    ]
    return rows


async def of_meeting(
    session: AsyncSession, meeting_id: str, *, after: datetime | None = None, limit: int = 50
) -> list[OccurrenceRow]:
    stmt = select(OccurrenceRow).where(OccurrenceRow.meeting_id == meeting_id)
    if after is not None:
        stmt = stmt.where(OccurrenceRow.end_at > after)
    return list(await session.scalars(stmt.order_by(OccurrenceRow.start_at).limit(limit)))


async def exceptions_of(session: AsyncSession, meeting_id: str) -> list[MeetingExceptionRow]:
    stmt = select(MeetingExceptionRow).where(MeetingExceptionRow.meeting_id == meeting_id)
    return list(await session.scalars(stmt.order_by(MeetingExceptionRow.original_start)))


async def set_exception(
    session: AsyncSession,
    meeting_id: str,
    original_start: datetime,
    *,
    skipped: bool,
    new_start: datetime | None = None,
    new_duration_minutes: int | None = None,
) -> None:
    """Skip or move one occurrence; a second change of the same occurrence replaces the first."""
    await remove_exception(session, meeting_id, original_start)
    session.add(
        MeetingExceptionRow(
            meeting_id=meeting_id,
            original_start=original_start,
            skipped=skipped,
            new_start=new_start,
            new_duration_minutes=new_duration_minutes,
        )
    )


async def remove_exception(
    session: AsyncSession, meeting_id: str, original_start: datetime
) -> bool:
    result = await session.execute(
        delete(MeetingExceptionRow).where(
            MeetingExceptionRow.meeting_id == meeting_id,
            MeetingExceptionRow.original_start == original_start,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def current(
    session: AsyncSession, meeting_id: str, now: datetime, early: timedelta
) -> OccurrenceRow | None:
    """The occurrence running now, or about to (opened up to `early` before its start)."""
    stmt = (
        select(OccurrenceRow)
        .where(
            OccurrenceRow.meeting_id == meeting_id,
            OccurrenceRow.start_at <= now + early,
            OccurrenceRow.end_at > now,
        )
        .order_by(OccurrenceRow.start_at)
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def next_after(session: AsyncSession, meeting_id: str, now: datetime) -> OccurrenceRow | None:
    stmt = (
        select(OccurrenceRow)
        .where(OccurrenceRow.meeting_id == meeting_id, OccurrenceRow.start_at > now)
        .order_by(OccurrenceRow.start_at)
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def due_to_open(session: AsyncSession, now: datetime, limit: int = 500) -> list[str]:
    """Scheduled meetings whose occurrence has started and not ended: they open now."""
    stmt = (
        select(OccurrenceRow.meeting_id)
        .join(MeetingRow, MeetingRow.id == OccurrenceRow.meeting_id)
        .where(
            OccurrenceRow.start_at >= now - MAX_DURATION,
            OccurrenceRow.start_at <= now,
            OccurrenceRow.end_at > now,
            MeetingRow.status == "scheduled",
        )
        .order_by(OccurrenceRow.start_at)
        .limit(limit)
    )
    return list(dict.fromkeys(await session.scalars(stmt)))


async def running_past_their_end(
    session: AsyncSession, now: datetime, early: timedelta
) -> list[MeetingRow]:
    """Meetings in progress with no occurrence now: their time is over."""
    happening = select(OccurrenceRow.id).where(
        OccurrenceRow.meeting_id == MeetingRow.id,
        OccurrenceRow.start_at <= now + early,
        OccurrenceRow.end_at > now,
    )
    stmt = select(MeetingRow).where(MeetingRow.status == "in_progress", ~happening.exists())
    return list(await session.scalars(stmt))
