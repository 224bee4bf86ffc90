"""Occurrences (when meetings happen) and the exceptions of repeating meetings.

A calendar range is answered from `occurrences` with one index range scan on `start_at`:
no meeting lasts longer than MAX_DURATION, so every occurrence that overlaps [from, to)
starts in [from - MAX_DURATION, to). The calendar reads only the columns it shows, from
the indexes (docs/query-plans.md), and counts no further than it shows.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    ScalarSelect,
    Select,
    SQLColumnExpression,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql._typing import _ColumnsClauseArgument

from moot.core.meeting_status import MeetingStatus
from moot.ems.model.meetings import MAX_DURATION_MINUTES
from moot.ems.store.meetings import Reader, search_condition, where_visible
from moot.ems.store.models import (
    ClosedOccurrenceRow,
    MeetingExceptionRow,
    MeetingRow,
    OccurrenceRow,
)

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


SortKey = Literal["start", "name", "moderator"]


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    """What the calendar shows of an occurrence: its times and a few columns of its meeting.

    Read from the indexes alone (`ix_occurrences_range`, `ix_meetings_calendar`), not as
    ORM rows: building 2,000 full meeting rows cost more than the query (docs/benchmarks.md).
    """

    meeting_id: str
    name: str
    moderator: str
    status: str
    original_start: datetime
    start_at: datetime
    end_at: datetime

    @property
    def moved(self) -> bool:
        return self.start_at != self.original_start


Time = datetime | BindParameter[datetime]


def _overlapping(
    range_from: Time,
    range_to: Time,
    matches: ColumnElement[bool] | None,
    reader: Reader,
    *columns: _ColumnsClauseArgument[Any],
    since: Time | None = None,
) -> Select[Any]:
    """Listed meetings' occurrences that overlap [range_from, range_to): one index range.

    `since`: range_from - MAX_DURATION (given when the times are bound parameters).
    """
    if since is None:
        assert isinstance(range_from, datetime)
        since = range_from - MAX_DURATION
    stmt = (
        select(*columns)
        .select_from(OccurrenceRow)
        .join(MeetingRow, MeetingRow.id == OccurrenceRow.meeting_id)
        .where(
            OccurrenceRow.start_at >= since,
            OccurrenceRow.start_at < range_to,
            OccurrenceRow.end_at > range_from,
            MeetingRow.unlisted.is_(False),
        )
    )
    stmt = where_visible(stmt, reader)
    return stmt if matches is None else stmt.where(matches)


_ENTRY_COLUMNS = (
    MeetingRow.id,
    MeetingRow.name,
    MeetingRow.moderator,
    MeetingRow.status,
    OccurrenceRow.original_start,
    OccurrenceRow.start_at,
    OccurrenceRow.end_at,
)


def _entries(rows: Iterable[Sequence[Any]]) -> list[CalendarEntry]:
    return [CalendarEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


async def in_range(
    session: AsyncSession,
    range_from: datetime,
    range_to: datetime,
    *,
    q: str | None = None,
    reader: Reader = Reader(),
    limit: int = 2000,
    after: tuple[datetime, str] | None = None,
) -> list[CalendarEntry]:
    """Listed meetings' occurrences that overlap [range_from, range_to), by start and meeting.

    `after` (start, meeting id) of the last entry of the previous page: the next page.
    """
    matches = await search_condition(session, q) if q else None
    stmt = _overlapping(range_from, range_to, matches, reader, *_ENTRY_COLUMNS)
    if after is not None:
        start, meeting_id = after
        stmt = stmt.where(
            or_(
                OccurrenceRow.start_at > start,
                and_(OccurrenceRow.start_at == start, OccurrenceRow.meeting_id > meeting_id),
            )
        )
    stmt = stmt.order_by(OccurrenceRow.start_at, OccurrenceRow.meeting_id).limit(limit)
    return _entries(await session.execute(stmt, reader.parameters()))


@dataclass(frozen=True, slots=True)
class CalendarPage:
    """A calendar page: how many occurrences each day has, and one page of a range's list.

    Counts stop at their cap (a day with 1,400 meetings reads "50+", not 1,400 rows): the
    page reads at most days x DAY_COUNT_CAP + LIST_COUNT_CAP + offset + limit occurrences,
    whatever the size of the calendar.
    """

    day_counts: list[int]  # of each day asked for, each at most DAY_COUNT_CAP
    total: int  # of the list's range, at most LIST_COUNT_CAP
    entries: list[CalendarEntry]
    more: bool  # entries after this page
    sorted_by: SortKey  # "start" when the range has too many to sort otherwise


DAY_COUNT_CAP = 50
LIST_COUNT_CAP = 500  # also the most a list sorts by name or moderator


def _capped_count(stmt: Select[Any], cap: int) -> ScalarSelect[int]:
    # Latest first: the index walk down from the range's end finds `cap` of a busy range
    # before it reaches the day before the range (read only for meetings lasting into it).
    capped = stmt.order_by(OccurrenceRow.start_at.desc()).limit(cap)
    return select(func.count()).select_from(capped.subquery()).scalar_subquery()


def _counted(
    windows: Sequence[tuple[Time, Time, Time]],
    matches: ColumnElement[bool] | None,
    reader: Reader,
) -> Select[Any]:
    """One row: the capped count of each (since, from, to) window, the first up to
    LIST_COUNT_CAP (the list's range), the others up to DAY_COUNT_CAP (days)."""
    one: ColumnElement[Any] = literal_column("1")
    counts: list[Any] = [
        _capped_count(
            _overlapping(low, high, matches, reader, one, since=since),
            LIST_COUNT_CAP if i == 0 else DAY_COUNT_CAP,
        )
        for i, (since, low, high) in enumerate(windows)
    ]
    return select(*counts)


@functools.lru_cache(maxsize=64)
def _counts(days: int, kind: str) -> Select[Any]:
    """`_counted` of the list's range and `days` days, with times (and the reader) as bound
    parameters: building the statement of 43 subqueries costs more than running it."""
    return _counted(
        [
            (bindparam(f"since{i}"), bindparam(f"low{i}"), bindparam(f"high{i}"))
            for i in range(days + 1)
        ],
        None,
        Reader.shaped(kind),
    )


async def calendar_page(
    session: AsyncSession,
    days: Sequence[tuple[datetime, datetime]],
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
    """Per-day counts of `days` and a page of [range_from, range_to), in two statements."""
    matches = await search_condition(session, q) if q else None
    windows = [(range_from, range_to), *days]
    if matches is None:  # the same statement for every month: built once
        times = {
            f"{name}{i}": value
            for i, (low, high) in enumerate(windows)
            for name, value in (("since", low - MAX_DURATION), ("low", low), ("high", high))
        }
        times |= reader.parameters()
        found = (await session.execute(_counts(len(days), reader.kind), times)).one()
    else:
        spans = [(low - MAX_DURATION, low, high) for low, high in windows]
        counted = _counted(spans, matches, reader)
        found = (await session.execute(counted, reader.parameters())).one()
    total, day_counts = int(found[0]), [int(n) for n in found[1:]]
    sorted_by: SortKey = sort if total < LIST_COUNT_CAP else "start"
    keys: list[SQLColumnExpression[Any]] = {
        "start": [OccurrenceRow.start_at, func.lower(MeetingRow.name)],
        "name": [func.lower(MeetingRow.name), OccurrenceRow.start_at],
        "moderator": [func.lower(MeetingRow.moderator), OccurrenceRow.start_at],
    }[sorted_by]
    if order == "desc":
        keys = [k.desc() for k in keys]
    stmt = (
        _overlapping(range_from, range_to, matches, reader, *_ENTRY_COLUMNS)
        .order_by(*keys, OccurrenceRow.meeting_id)
        .offset(offset)
        .limit(limit + 1)
    )
    entries = _entries(await session.execute(stmt, reader.parameters()))
    return CalendarPage(day_counts, total, entries[:limit], len(entries) > limit, sorted_by)


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


def _not_closed() -> ColumnElement[bool]:
    """The occurrence was not closed early by a moderator (closed_occurrences)."""
    return ~(
        select(ClosedOccurrenceRow.id)
        .where(
            ClosedOccurrenceRow.meeting_id == OccurrenceRow.meeting_id,
            ClosedOccurrenceRow.original_start == OccurrenceRow.original_start,
        )
        .exists()
    )


async def current(
    session: AsyncSession, meeting_id: str, now: datetime, early: timedelta
) -> OccurrenceRow | None:
    """The occurrence running now, or about to (opened up to `early` before its start);
    not one a moderator closed early."""
    stmt = (
        select(OccurrenceRow)
        .where(
            OccurrenceRow.meeting_id == meeting_id,
            OccurrenceRow.start_at <= now + early,
            OccurrenceRow.end_at > now,
            _not_closed(),
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
    """Scheduled meetings whose occurrence has started and not ended: they open now (not
    an occurrence a moderator closed early)."""
    stmt = (
        select(OccurrenceRow.meeting_id)
        .join(MeetingRow, MeetingRow.id == OccurrenceRow.meeting_id)
        .where(
            OccurrenceRow.start_at >= now - MAX_DURATION,
            OccurrenceRow.start_at <= now,
            OccurrenceRow.end_at > now,
            MeetingRow.status == MeetingStatus.SCHEDULED,
            _not_closed(),
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
    stmt = select(MeetingRow).where(
        MeetingRow.status == MeetingStatus.IN_PROGRESS, ~happening.exists()
    )
    return list(await session.scalars(stmt))


def close_early(
    session: AsyncSession, meeting_id: str, occurrence: OccurrenceRow, at: datetime, by: str
) -> None:
    """Record that a moderator closed this occurrence early: it is not opened again."""
    session.add(
        ClosedOccurrenceRow(
            meeting_id=meeting_id,
            original_start=occurrence.original_start,
            closed_at=at,
            closed_by=by[:200],
        )
    )


async def closed_early(session: AsyncSession, meeting_id: str) -> list[ClosedOccurrenceRow]:
    """The meeting's occurrences closed early, first first."""
    stmt = (
        select(ClosedOccurrenceRow)
        .where(ClosedOccurrenceRow.meeting_id == meeting_id)
        .order_by(ClosedOccurrenceRow.original_start)
    )
    return list(await session.scalars(stmt))
