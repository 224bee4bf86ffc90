"""The calendar page: a month view, a day, a week or the month listed, search, sort, pages.

Days are the reader's own: the time zone comes from the `tz` query parameter, else the
`moot_tz` cookie that times.js sets from the browser, else UTC. The page reads the counts
of its days and one page of its list from the database (`occurrences.calendar_page`),
not the whole month: a busy month holds tens of thousands of occurrences.
"""

from __future__ import annotations

import calendar as calendar_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from urllib.parse import unquote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from moot.core.permissions import Action
from moot.ems.auth.identity import NotPermitted
from moot.ems.deps import AuthDep, FeedsDep, IdentityDep, MeetingsDep, ScheduleDep
from moot.ems.store.occurrences import (
    DAY_COUNT_CAP,
    LIST_COUNT_CAP,
    CalendarEntry,
    CalendarPage,
)
from moot.ems.web.security import check_csrf
from moot.ems.web.templating import templates

router = APIRouter(include_in_schema=False)

TZ_COOKIE = "moot_tz"
PAGE_SIZE = 25
MAX_PAGES = 400  # the list's first 10,000: each page reads (OFFSET) every row before it
SORTS = ("start", "name", "moderator")


@dataclass(frozen=True, slots=True)
class Row:
    """One occurrence as the list shows it, in the reader's time zone."""

    start: datetime
    end: datetime
    entry: CalendarEntry
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


@router.get("/calendar", response_class=HTMLResponse)
async def calendar_page(
    request: Request,
    meetings: MeetingsDep,
    schedule: ScheduleDep,
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
    days = [d for w in weeks for d in w]
    bounds = [(_midnight(d, zone), _midnight(d + timedelta(days=1), zone)) for d in days]
    list_from, list_to = _midnight(range_from, zone), _midnight(range_to, zone)

    async def read(page: int) -> CalendarPage:
        return await schedule.calendar_page(
            bounds,
            list_from,
            list_to,
            q=q or None,
            reader=auth.reader_of(identity),
            sort=sort,
            order=order,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )

    page = min(page, MAX_PAGES)
    found = await read(page)
    exact = found.total < LIST_COUNT_CAP  # else "500 meetings or more", no last page
    pages = max(1, -(-found.total // PAGE_SIZE)) if exact else None
    if pages is not None and page > pages:
        page = pages
        found = await read(page)
    rows = [
        Row(
            start=e.start_at.astimezone(zone),
            end=e.end_at.astimezone(zone),
            entry=e,
            moved=e.moved,
        )
        for e in found.entries
    ]
    return templates.TemplateResponse(
        request,
        "calendar.html",
        {
            "first": first,
            "weeks": weeks,
            "today": today,
            "per_day": {d: n for d, n in zip(days, found.day_counts, strict=True) if n},
            "day_cap": DAY_COUNT_CAP,
            "previous": _shift_month(first, -1),
            "next": _shift_month(first, 1),
            "chosen_day": chosen_day,
            "chosen_week": chosen_week,
            "title": title,
            "rows": rows,
            "total": found.total,
            "exact": exact,
            "page": page,
            "pages": pages,
            "more": found.more and page < MAX_PAGES,
            "q": q or "",
            "sort": found.sorted_by,
            "asked_sort": sort,
            "order": order,
            "zone": zone.key,
            # A feed address just made (new_feed): shown this once, never from the query.
            "feed_url": getattr(request.state, "feed_url", None),
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


@router.post("/calendar/feed", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
async def new_feed(
    request: Request,
    meetings: MeetingsDep,
    schedule: ScheduleDep,
    feeds: FeedsDep,
    auth: AuthDep,
    identity: IdentityDep,
) -> HTMLResponse:
    """A new secret address for the signed-in person's feed, shown on the calendar once."""
    _signed_in(identity)
    request.state.feed_url = await feeds.new_address(identity)
    return await calendar_page(request, meetings, schedule, auth=auth, identity=identity)


@router.post("/calendar/feed/stop", dependencies=[Depends(check_csrf)], response_model=None)
async def stop_feed(feeds: FeedsDep, identity: IdentityDep) -> RedirectResponse:
    _signed_in(identity)
    await feeds.stop(identity)
    return RedirectResponse("/calendar", status_code=303)


def _signed_in(identity: IdentityDep) -> None:
    if identity.claims is None or identity.claims.source == "cluster-secret":
        raise NotPermitted("sign in to have a calendar feed", signed_in=identity.claims is not None)
