"""The schedule: meetings' occurrences, the calendar, the exceptions of repeating meetings
(skipped and moved occurrences) and the calendar entries of .ics files and feeds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from moot.core.ical import CalendarMeeting
from moot.core.meeting_status import MeetingStatus
from moot.core.recurrence import is_occurrence
from moot.ems.errors import InvalidChange, InvalidQuery
from moot.ems.meetings import START_SLACK, MeetingService
from moot.ems.occurrences import MAX_CALENDAR_RANGE, write_occurrences
from moot.ems.store import meetings as store
from moot.ems.store import occurrences as occurrence_store
from moot.ems.store.db import utcnow
from moot.ems.store.meetings import Reader
from moot.ems.store.models import MeetingExceptionRow, MeetingRow, OccurrenceRow
from moot.ems.store.occurrences import CalendarEntry, CalendarPage, SortKey


class Schedule:
    """Reads and changes when meetings happen; changes take the meeting's lock, as every
    change of MeetingService does."""

    def __init__(self, meetings: MeetingService) -> None:
        self._meetings = meetings

    async def occurrences_of(
        self, meeting_id: str, after: datetime | None = None, limit: int = 50
    ) -> tuple[MeetingRow, list[OccurrenceRow]]:
        async with self._meetings.sessions() as session:
            row = await self._meetings.get_in(session, meeting_id)
            return row, await occurrence_store.of_meeting(
                session, meeting_id, after=after, limit=limit
            )

    async def calendar(
        self,
        range_from: datetime,
        range_to: datetime,
        q: str | None = None,
        reader: Reader = Reader(),
        *,
        limit: int = 2000,
        after: tuple[datetime, str] | None = None,
    ) -> list[CalendarEntry]:
        """Listed meetings' occurrences that overlap the range, by start (a page of them)."""
        if range_to <= range_from:
            raise InvalidQuery("to", "must lie after from")
        if range_to - range_from > MAX_CALENDAR_RANGE:
            raise InvalidQuery("to", "a calendar range is at most 62 days")
        async with self._meetings.sessions() as session:
            return await occurrence_store.in_range(
                session, range_from, range_to, q=q, reader=reader, limit=limit, after=after
            )

    async def calendar_page(
        self,
        days: list[tuple[datetime, datetime]],
        range_from: datetime,
        range_to: datetime,
        *,
        q: str | None = None,
        reader: Reader = Reader(),
        sort: SortKey = "start",
        order: Literal["asc", "desc"] = "asc",
        offset: int = 0,
        limit: int = 25,
    ) -> CalendarPage:
        """The calendar page's counts per day and one page of its list."""
        async with self._meetings.sessions() as session:
            return await occurrence_store.calendar_page(
                session,
                days,
                range_from,
                range_to,
                q=q,
                reader=reader,
                sort=sort,
                order=order,
                offset=offset,
                limit=limit,
            )

    async def exceptions(self, meeting_id: str) -> list[MeetingExceptionRow]:
        async with self._meetings.sessions() as session:
            await self._meetings.get_in(session, meeting_id)
            return await occurrence_store.exceptions_of(session, meeting_id)

    async def set_exception(
        self,
        meeting_id: str,
        original_start: datetime,
        *,
        new_start: datetime | None = None,
        duration_minutes: int | None = None,
    ) -> MeetingRow:
        """Skip one occurrence of a repeating meeting (no new start), or move it."""
        original = original_start.astimezone(UTC)
        async with self._meetings.lock(meeting_id), self._meetings.sessions() as session:
            row = await self._meetings.get_in(session, meeting_id)
            if row.recurrence is None:
                raise InvalidChange(
                    "original_start", "this meeting does not repeat: change its start instead"
                )
            if row.status == MeetingStatus.ENDED:
                raise InvalidChange("original_start", "an ended meeting cannot be changed")
            if not is_occurrence(
                start=row.start_at,
                rule=row.recurrence,
                timezone=row.timezone,
                original_start=original,
            ):
                raise InvalidChange("original_start", "the repeat rule has no occurrence then")
            now = utcnow()
            if original + timedelta(minutes=row.duration_minutes) <= now:
                raise InvalidChange("original_start", "that occurrence is over")
            if new_start is not None and new_start < now - START_SLACK:
                raise InvalidChange("start", "the new start lies in the past")
            await occurrence_store.set_exception(
                session,
                meeting_id,
                original,
                skipped=new_start is None,
                new_start=None if new_start is None else new_start.astimezone(UTC),
                new_duration_minutes=duration_minutes,
            )
            await session.flush()
            await write_occurrences(session, row, now)
            await session.commit()
            return row

    async def remove_exception(self, meeting_id: str, original_start: datetime) -> MeetingRow:
        """The occurrence happens as the rule says again."""
        async with self._meetings.lock(meeting_id), self._meetings.sessions() as session:
            row = await self._meetings.get_in(session, meeting_id)
            found = await occurrence_store.remove_exception(
                session, meeting_id, original_start.astimezone(UTC)
            )
            if not found:
                raise InvalidChange(
                    "original_start", "that occurrence is neither skipped nor moved"
                )
            await session.flush()
            await write_occurrences(session, row, utcnow())
            await session.commit()
            return row

    async def calendar_entry(self, meeting_id: str) -> CalendarMeeting:
        async with self._meetings.sessions() as session:
            row = await self._meetings.get_in(session, meeting_id)
            return self._calendar_meeting(
                row, await occurrence_store.exceptions_of(session, row.id)
            )

    async def moderated_by(
        self, name: str, visible: Callable[[MeetingRow], bool]
    ) -> list[CalendarMeeting]:
        """The meetings `name` moderates that have not ended and `visible` lets through, for
        a personal calendar feed."""
        async with self._meetings.sessions() as session:
            rows = [r for r in await store.moderated_by(session, name) if visible(r)]
            return [
                self._calendar_meeting(r, await occurrence_store.exceptions_of(session, r.id))
                for r in rows
            ]

    def _calendar_meeting(
        self, row: MeetingRow, exceptions: list[MeetingExceptionRow]
    ) -> CalendarMeeting:
        return CalendarMeeting(
            id=row.id,
            name=row.name,
            moderator=row.moderator,
            start=row.start_at,
            duration_minutes=row.duration_minutes,
            timezone=row.timezone,
            url=f"{self._meetings.public_url}/meetings/{row.id}",
            updated_at=row.updated_at,
            rule=row.recurrence,
            skipped=frozenset(e.original_start for e in exceptions if e.skipped),
            moved={
                e.original_start: (e.new_start, e.new_duration_minutes)
                for e in exceptions
                if e.new_start is not None
            },
            status=row.status,  # type: ignore[arg-type]
        )
