"""The calendar page: a month view, a day, a week or the month listed, search, sort, pages.

Days are the reader's own: the time zone comes from the `tz` query parameter, else the
`moot_tz` cookie that times.js sets from the browser, else UTC.
"""

from __future__ import annotations

import calendar as calendar_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from urllib.parse import unquote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from moot.ems.deps import AuthDep, IdentityDep, MeetingsDep
from moot.ems.store.models import MeetingRow, OccurrenceRow
from moot.ems.web.templating import templates
from moot.permissions import Action

router = APIRouter(include_in_schema=False)

TZ_COOKIE = "moot_tz"
PAGE_SIZE = 25
SORTS = ("start", "name", "moderator")


@dataclass(frozen=True, slots=True)
class Row:
    """One occurrence as the list shows it, in the reader's time zone."""

    start: datetime
    end: datetime
    meeting: MeetingRow
    moved: bool


def reader_zone(request: Request, tz: str | None) -> ZoneInfo:
    for name in (tz, unquote(request.cookies.get(TZ_COOKIE, ""))):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def month_weeks(year: int, month: int) -> list[list[date]]:
    """The month's weeks, Monday first, padded with the neighbouring months' days."""
    return calendar_module.Calendar(firstweekday=0).monthdatescalendar(year, month)


def _month_of(text: str | None, today: date) -> date:
    if text:
        try:
            return datetime.strptime(text, "%Y-%m").date()
        except ValueError:
            pass
    return today.replace(day=1)


def _day_of(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _shift_month(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def sorted_rows(rows: list[Row], sort: str, order: str) -> list[Row]:
    key = {
        "start": lambda r: (r.start, r.meeting.name.casefold()),
        "name": lambda r: (r.meeting.name.casefold(), r.start),
        "moderator": lambda r: (r.meeting.moderator.casefold(), r.start),
    }[sort]
    return sorted(rows, key=key, reverse=order == "desc")


@router.get("/calendar", response_class=HTMLResponse)
async def calendar_page(
    request: Request,
    meetings: MeetingsDep,
    month: Annotated[str | None, Query(max_length=7)] = None,
    day: Annotated[str | None, Query(max_length=10)] = None,
    week: Annotated[str | None, Query(max_length=10)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    sort: Literal["start", "name", "moderator"] = "start",
    order: Literal["asc", "desc"] = "asc",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    tz: Annotated[str | None, Query(max_length=64)] = None,
    *,
    auth: AuthDep,
    identity: IdentityDep,
) -> HTMLResponse:
    auth.require(identity, Action.BROWSE)
    zone = reader_zone(request, tz)
    today = datetime.now(zone).date()
    chosen_day, chosen_week = _day_of(day), _day_of(week)
    first = _month_of(month, (chosen_day or chosen_week or today))
    weeks = month_weeks(first.year, first.month)
    grid_from, grid_to = _midnight(weeks[0][0], zone), _midnight(weeks[-1][-1] + timedelta(1), zone)
    # What the list shows: the day or week clicked, else the whole month.
    if chosen_day is not None:
        range_from, range_to = chosen_day, chosen_day + timedelta(days=1)
        title = f"Meetings on {chosen_day:%A %d %B %Y}"
    elif chosen_week is not None:
        monday = chosen_week - timedelta(days=chosen_week.weekday())
        range_from, range_to = monday, monday + timedelta(days=7)
        title = f"Meetings in the week of {monday:%d %B %Y}"
    else:
        range_from = first
        range_to = _shift_month(first, 1)
        title = f"Meetings in {first:%B %Y}"
    if q:
        title += f" matching \u201c{q}\u201d"
    found = await meetings.calendar(grid_from, grid_to, q or None, auth.scope_of(identity))
    per_day: dict[date, int] = {}
    rows: list[Row] = []
    list_from, list_to = _midnight(range_from, zone), _midnight(range_to, zone)
    for occurrence, meeting in found:
        _count_days(per_day, occurrence, zone)
        if occurrence.start_at < list_to and occurrence.end_at > list_from:
            rows.append(
                Row(
                    start=occurrence.start_at.astimezone(zone),
                    end=occurrence.end_at.astimezone(zone),
                    meeting=meeting,
                    moved=occurrence.start_at != occurrence.original_start,
                )
            )
    rows = sorted_rows(rows, sort, order)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(page, pages)
    return templates.TemplateResponse(
        request,
        "calendar.html",
        {
            "first": first,
            "weeks": weeks,
            "today": today,
            "per_day": per_day,
            "previous": _shift_month(first, -1),
            "next": _shift_month(first, 1),
            "chosen_day": chosen_day,
            "chosen_week": chosen_week,
            "title": title,
            "rows": rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
            "total": len(rows),
            "page": page,
            "pages": pages,
            "q": q or "",
            "sort": sort,
            "order": order,
            "zone": zone.key,
            "link": _linker(
                {
                    "month": first.strftime("%Y-%m"),
                    "day": day,
                    "week": week,
                    "q": q,
                    "sort": sort,
                    "order": order,
                }
            ),
        },
    )


def _linker(state: dict[str, str | None]) -> Callable[..., str]:
    """Links that keep what the reader chose (month, search, sort) and change some of it."""

    def link(**changes: str | int | None) -> str:
        merged = {**state, **changes}
        return "/calendar?" + urlencode({k: v for k, v in merged.items() if v not in (None, "")})

    return link


def _count_days(per_day: dict[date, int], occurrence: OccurrenceRow, zone: ZoneInfo) -> None:
    """Count the occurrence on every day of the reader's it touches (23:30-00:30: two)."""
    day = occurrence.start_at.astimezone(zone).date()
    last = (occurrence.end_at - timedelta(microseconds=1)).astimezone(zone).date()
    while day <= last:
        per_day[day] = per_day.get(day, 0) + 1
        day += timedelta(days=1)
