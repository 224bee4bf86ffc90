"""When a meeting happens: its repeat rule checked, and its occurrences written from its
start, duration, rule and exceptions (skipped and moved ones)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from moot.core.recurrence import (
    Exceptions,
    Moved,
    RecurrenceError,
    first_start,
    last_end,
    normalize_rule,
    occurrences,
)
from moot.ems.errors import InvalidChange
from moot.ems.store import occurrences as occurrence_store
from moot.ems.store.models import MeetingExceptionRow, MeetingRow
from moot.ems.store.occurrences import When

# Occurrences of a repeating meeting without an end are written this far ahead.
OCCURRENCES_AHEAD = timedelta(days=2 * 365)
MAX_CALENDAR_RANGE = timedelta(days=62)


def repeat_rule(text: str | None, start: datetime, timezone: str, *, instant: bool) -> str | None:
    """The canonical repeat rule, checked against the meeting's start and time zone."""
    if text is None:
        return None
    if instant:
        raise InvalidChange("recurrence", "a meeting that starts now does not repeat; schedule it")
    try:
        return normalize_rule(text, start, timezone=timezone)
    except RecurrenceError as exc:
        raise InvalidChange("recurrence", str(exc)) from exc


def exceptions_of_rows(rows: list[MeetingExceptionRow]) -> Exceptions:
    return Exceptions(
        skipped=frozenset(r.original_start for r in rows if r.skipped),
        moved={
            r.original_start: Moved(start=r.new_start, duration_minutes=r.new_duration_minutes)
            for r in rows
            if not r.skipped and r.new_start is not None
        },
    )


async def write_occurrences(session: AsyncSession, row: MeetingRow, now: datetime) -> None:
    """Write when the meeting happens, from its start, duration, rule and exceptions."""
    exceptions = exceptions_of_rows(await occurrence_store.exceptions_of(session, row.id))
    rule, zone = row.recurrence, row.timezone
    row.series_end_at = last_end(
        start=row.start_at,
        duration_minutes=row.duration_minutes,
        rule=rule,
        timezone=zone,
        exceptions=exceptions,
    )
    found = occurrences(
        start=row.start_at,
        duration_minutes=row.duration_minutes,
        rule=rule,
        timezone=zone,
        exceptions=exceptions,
        range_from=first_start(start=row.start_at, rule=rule, timezone=zone, exceptions=exceptions),
        range_to=row.series_end_at or max(now, row.start_at) + OCCURRENCES_AHEAD,
    )
    await occurrence_store.replace(
        session, row.id, [When(o.original_start, o.start, o.end) for o in found]
    )
