"""What is timed: the store's own calls as the calendar page, the calendar API and the
name search make them, and the search as it was before migration 0012."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    or_,
    select,
)
from sqlalchemy.ext.asyncio import (
    AsyncSession,
)

from moot.ems.store.meetings import MeetingQuery, list_meetings
from moot.ems.store.models import MeetingRow
from moot.ems.store.occurrences import calendar_page, in_range
from moot.ems.web.calendar import month_weeks
from searchbench.names import WORD, Corpus, meeting_name

# --- the search as it was before migration 0012 (docs/benchmarks.md, "Search") -----------


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_before(session: AsyncSession, q: str, limit: int = 50) -> list[MeetingRow]:
    """The first page of `list_meetings(MeetingQuery(q=q))` as the store wrote it before
    0012: ILIKE '%q%' on name or moderator, nothing else. For 3 characters or more the store
    must still return exactly these rows (checked on a sample: `--before`)."""
    pattern = f"%{_escape_like(q)}%"
    stmt = (
        select(MeetingRow)
        .where(
            MeetingRow.unlisted.is_(False),
            or_(
                MeetingRow.name.ilike(pattern, escape="\\"),
                MeetingRow.moderator.ilike(pattern, escape="\\"),
            ),
        )
        .order_by(MeetingRow.start_at.asc(), MeetingRow.id.asc())
        .limit(limit + 1)
    )
    return list((await session.scalars(stmt)).all())[:limit]


Call = Callable[[AsyncSession], Awaitable[list[Any]]]


def month_grid(first: date) -> tuple[datetime, datetime]:
    """The calendar page's range for a month: whole weeks, Monday first (UTC reader)."""
    start = first - timedelta(days=first.weekday())
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    last = following - timedelta(days=1)
    end = last + timedelta(days=7 - last.weekday())
    return (
        datetime.combine(start, clock(0), UTC),
        datetime.combine(end, clock(0), UTC),
    )


def months_of(now: datetime) -> list[date]:
    """The whole months within a year either side of `now`."""
    first = date(now.year - 1, now.month, 1)
    months = []
    for k in range(1, 24):
        index = first.year * 12 + first.month - 1 + k
        months.append(date(index // 12, index % 12 + 1, 1))
    return months


def search_words(corpus: Corpus, rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(kind, word): vocabulary words, words of a random name, family names, typos, and
    one or two first letters of a name (every 25th)."""
    vocabulary = corpus.words()
    chosen: list[tuple[str, str]] = []
    for k in range(count):
        if k % 25 == 24:
            name = meeting_name(rng, corpus).lower()
            chosen.append(("short", name[: rng.choice((1, 2, 2))]))
        elif k % 20 == 19:  # a typo: most often found nowhere
            word = rng.choice(corpus.codenames).lower()
            cut = rng.randrange(1, len(word) - 1)
            chosen.append(("typo", word[:cut] + word[cut + 1] + word[cut] + word[cut + 2 :]))
        elif k % 10 == 9:
            chosen.append(("moderator", rng.choice(corpus.people).split(".")[1]))
        elif k % 2 == 0:
            chosen.append(("vocabulary", rng.choice(vocabulary)))
        else:
            words = [w for w in WORD.findall(meeting_name(rng, corpus).lower()) if len(w) >= 3]
            chosen.append(("in a name", rng.choice(words or vocabulary)))
    rng.shuffle(chosen)
    return chosen


def page_days(first: date) -> tuple[list[tuple[datetime, datetime]], datetime, datetime]:
    """What the calendar page asks for a month (a UTC reader): its grid's days, the month."""
    days = [d for week in month_weeks(first.year, first.month) for d in week]
    midnight = [datetime.combine(d, clock(0), UTC) for d in (*days, days[-1] + timedelta(1))]
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (
        list(pairwise(midnight)),
        datetime.combine(first, clock(0), UTC),
        datetime.combine(following, clock(0), UTC),
    )


def month_call(first: date) -> Call:
    """The calendar page of a month: counts of its 35 or 42 days, the first 25 of the list."""
    days, low, high = page_days(first)

    async def page(session: AsyncSession) -> list[Any]:
        found = await calendar_page(session, days, low, high)
        return [(e.meeting_id, e.start_at) for e in found.entries]

    return page


def api_call(first: date) -> Call:
    """GET /api/v1/calendar over the month's grid: its first page, 2,000 occurrences."""
    low, high = month_grid(first)

    async def first_page(session: AsyncSession) -> list[Any]:
        return [(e.meeting_id, e.start_at) for e in await in_range(session, low, high)]

    return first_page


def search_call(q: str) -> Call:
    """The first page of a search, as meeting ids."""

    async def store(session: AsyncSession) -> list[Any]:
        rows, _ = await list_meetings(session, MeetingQuery(q=q))
        return [m.id for m in rows]

    return store


def before_call(q: str) -> Call:
    async def before(session: AsyncSession) -> list[Any]:
        return [m.id for m in await search_before(session, q)]

    return before
