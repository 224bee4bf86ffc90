"""Dates for tests, worked out from today: a test never names a calendar day.

The EMS rightly refuses a meeting that starts in the past, so a fixed date in a test
breaks on the day it passes. Every date a test schedules on comes from here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def today() -> date:
    return datetime.now(UTC).date()


def monday_weeks_ahead(weeks: int) -> date:
    """The Monday `weeks` weeks after this week's Monday (weeks >= 1 lies in the future)."""
    now = today()
    return now - timedelta(days=now.weekday()) + timedelta(weeks=weeks)


def _utc_offset(day: date, zone: ZoneInfo) -> timedelta:
    offset = datetime(day.year, day.month, day.day, 12, tzinfo=zone).utcoffset()
    assert offset is not None
    return offset


def next_summer_time_end(zone: ZoneInfo, after: date) -> date:
    """The first day after `after` on which `zone`'s clocks go back (the day of the change)."""
    day = after + timedelta(days=1)
    for _ in range(2 * 366):
        if _utc_offset(day, zone) < _utc_offset(day - timedelta(days=1), zone):
            return day
        day += timedelta(days=1)
    raise ValueError(f"{zone} has no change of clocks within two years of {after}")
