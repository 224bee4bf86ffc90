"""The reports' figures, read from the tables and the views of migration 0014.

The database counts: every query groups by the local day in SQL, so a report over three
years reads aggregates, not rows. SQLite has no time zones, so the local day is the UTC
time plus the zone's offset at that time (moot.core.reports.offset_segments: one offset, or a
CASE over the few pieces between clock changes), cut to its date.

The peak of people present at once is a sweep in SQL too (window functions: SQLite 3.25 and
later, PostgreSQL): every stay, cut to the range, gives +1 when it begins and -1 when it
ends. A running sum per person, ordered by time (leaves before joins), tells when a person
comes (0 to 1 stays) and goes (1 to 0), so a person in two tabs or two meetings, or with a
failover's second stay, counts once; a running sum of those over everyone gives the people
present after each moment. (report_presence merges stays per person and meeting only: two
meetings at once would count twice.) The database returns three moments per day (the first,
the first at the day's most, the last); moot.core.reports.peaks_of_moments carries the count
across days without moments.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import column, table
from sqlalchemy.types import Date, Integer, String

from moot.core import reports as pure
from moot.ems.store.db import UTCDateTime
from moot.ems.store.models import CapacityWarningRow, LoginFailureRow, LoginRow, ServerSampleRow

# The views (migration 0014), as far as the reports read them.
report_meetings = table(
    "report_meetings",
    column("id", String),
    column("type", String),
    column("started_at", UTCDateTime),
    column("seconds", Integer),
    column("participants", Integer),
)
report_stays = table(
    "report_stays",
    column("user_name", String),
    column("joined_at", UTCDateTime),
    column("left_at", UTCDateTime),
)


def local_day(at: Any, rng: pure.DateRange, dialect: str) -> ColumnElement[Any]:
    """SQL for the day of `rng.zone` in which the UTC timestamp `at` falls."""
    pieces = pure.offset_segments(rng.zone, rng.start, rng.end)

    def shifted(seconds: int) -> ColumnElement[Any]:
        if dialect == "postgresql":
            return literal_column(f"INTERVAL '{int(seconds)} seconds'")
        return literal_column(f"'{int(seconds)} seconds'")

    offset: ColumnElement[Any]
    if len(pieces) == 1:
        offset = shifted(pieces[0][1])
    else:
        offset = case(
            *[(at < until, shifted(seconds)) for until, seconds in pieces[:-1]],
            else_=shifted(pieces[-1][1]),
        )
    if dialect == "postgresql":
        return cast(at + offset, Date)
    # Whole seconds first: SQLite's date() rounds 23:59:59.9996 up to the next day.
    return func.date(func.substr(at, 1, 19), offset)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _in(at: Any, rng: pure.DateRange) -> ColumnElement[bool]:
    return and_(at >= rng.start, at < rng.end)


class Reports:
    """Builds every report from the store; `now` bounds the stays still open."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def build(self, name: str, rng: pure.DateRange, now: datetime) -> pure.Report:
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            if name == "logins":
                return await _logins(session, rng, dialect, now)
            if name == "login_failures":
                return await _failures(session, rng, dialect)
            if name == "meetings":
                return await _meetings(session, rng, dialect)
            if name == "capacity_warnings":
                return await _warnings(session, rng, dialect)
            if name == "server_peaks":
                return await _server_peaks(session, rng)
            if name == "community":
                return await _community(session, rng, dialect)
        raise KeyError(name)


async def _logins(
    session: AsyncSession, rng: pure.DateRange, dialect: str, now: datetime
) -> pure.Report:
    day = local_day(LoginRow.at, rng, dialect).label("day")
    daily = {
        _day(d): (int(n), int(u))
        for d, n, u in (
            await session.execute(
                select(day, func.count(), func.count(LoginRow.username.distinct()))
                .where(_in(LoginRow.at, rng))
                .group_by(day)
            )
        ).all()
    }
    users = await session.scalar(
        select(func.count(LoginRow.username.distinct())).where(_in(LoginRow.at, rng))
    )
    moments = await _day_moments(session, rng, dialect, now)
    return pure.logins_report(rng, daily, int(users or 0), pure.peaks_of_moments(rng, moments))


async def _day_moments(
    session: AsyncSession, rng: pure.DateRange, dialect: str, now: datetime
) -> dict[date, pure.DayMoments]:
    """Per day of `rng`, its first moment, the first at its most people, and its last."""
    s = report_stays.c
    start, end = literal(rng.start, UTCDateTime), literal(rng.end, UTCDateTime)
    left = func.coalesce(s.left_at, literal(now, UTCDateTime))  # open: there until now
    overlapping = and_(s.joined_at < end, left > start, left > s.joined_at)
    events = union_all(
        select(
            s.user_name.label("user_name"),
            case((s.joined_at < start, start), else_=s.joined_at).label("at"),
            literal_column("1", Integer).label("delta"),
        ).where(overlapping),
        select(
            s.user_name, case((left > end, end), else_=left), literal_column("-1", Integer)
        ).where(overlapping),
    ).subquery("events")
    e = events.c
    stays_of_person = (
        func.sum(e.delta)
        .over(partition_by=e.user_name, order_by=(e.at, e.delta), rows=(None, 0))
        .label("stays")
    )
    per_person = select(e.at, e.delta, stays_of_person).subquery("per_person")
    p = per_person.c
    comes_or_goes = or_(and_(p.delta == 1, p.stays == 1), and_(p.delta == -1, p.stays == 0))
    changes = (
        select(p.at, func.sum(p.delta).label("change"))
        .where(comes_or_goes)
        .group_by(p.at)
        .subquery("changes")
    )
    c = changes.c
    moments = select(
        c.at,
        local_day(c.at, rng, dialect).label("day"),
        func.sum(c.change).over(order_by=c.at, rows=(None, 0)).label("people"),
    ).subquery("moments")
    m = moments.c
    ranked = (
        select(
            m.day,
            m.at,
            m.people,
            func.row_number().over(partition_by=m.day, order_by=m.at).label("first"),
            func.row_number()
            .over(partition_by=m.day, order_by=(m.people.desc(), m.at))
            .label("best"),
            func.row_number().over(partition_by=m.day, order_by=m.at.desc()).label("last"),
        )
        .where(m.at < end)
        .subquery("ranked")
    )
    r = ranked.c
    found: dict[date, dict[str, Any]] = {}
    for day, at, people, first, best, last in (
        await session.execute(
            select(r.day, r.at, r.people, r.first, r.best, r.last).where(
                or_(r.first == 1, r.best == 1, r.last == 1)
            )
        )
    ).all():
        figures = found.setdefault(_day(day), {})
        if first == 1:
            figures["first_at"], figures["first_people"] = at, int(people)
        if best == 1:
            figures["best_at"], figures["best_people"] = at, int(people)
        if last == 1:
            figures["last_people"] = int(people)
    return {day: pure.DayMoments(**figures) for day, figures in found.items()}


async def _failures(session: AsyncSession, rng: pure.DateRange, dialect: str) -> pure.Report:
    f = LoginFailureRow
    day = local_day(f.at, rng, dialect).label("day")
    figures = (func.count(), func.count(f.username.distinct()), func.count(f.address.distinct()))
    daily = {
        _day(d): (int(n), int(u), int(a))
        for d, n, u, a in (
            await session.execute(select(day, *figures).where(_in(f.at, rng)).group_by(day))
        ).all()
    }
    n, u, a = (await session.execute(select(*figures).where(_in(f.at, rng)))).one()
    return pure.login_failures_report(rng, daily, (int(n), int(u), int(a)))


async def _meetings(session: AsyncSession, rng: pure.DateRange, dialect: str) -> pure.Report:
    m = report_meetings.c
    day = local_day(m.started_at, rng, dialect).label("day")
    rows = (
        await session.execute(
            select(
                day,
                m.type,
                func.count(),
                func.count(m.seconds),
                func.coalesce(func.sum(m.seconds), 0),
                func.coalesce(func.sum(m.participants), 0),
            )
            .where(_in(m.started_at, rng))
            .group_by(day, m.type)
        )
    ).all()
    daily = {
        (_day(d), str(kind)): pure.MeetingFigures(int(n), int(ended), int(sec), int(people))
        for d, kind, n, ended, sec, people in rows
    }
    return pure.meetings_report(rng, daily)


async def _warnings(session: AsyncSession, rng: pure.DateRange, dialect: str) -> pure.Report:
    w = CapacityWarningRow
    day = local_day(w.at, rng, dialect).label("day")
    daily = {
        (_day(d), str(kind)): int(n)
        for d, kind, n in (
            await session.execute(
                select(day, w.kind, func.count()).where(_in(w.at, rng)).group_by(day, w.kind)
            )
        ).all()
    }
    meetings = {
        _day(d): int(n)
        for d, n in (
            await session.execute(
                select(day, func.count(w.meeting_id.distinct())).where(_in(w.at, rng)).group_by(day)
            )
        ).all()
    }
    total = await session.scalar(select(func.count(w.meeting_id.distinct())).where(_in(w.at, rng)))
    return pure.capacity_warnings_report(rng, daily, meetings, int(total or 0))


async def _server_peaks(session: AsyncSession, rng: pure.DateRange) -> pure.Report:
    s = ServerSampleRow
    maxima = (
        select(
            s.server_name,
            func.count().label("samples"),
            func.max(s.active_meetings).label("meetings"),
            func.max(s.participants).label("participants"),
            func.max(s.cpu_percent).label("cpu"),
            func.max(s.memory_percent).label("memory"),
        )
        .where(_in(s.at, rng))
        .group_by(s.server_name)
        .subquery()
    )

    async def first_reached(value: Any, peak: Any, seen: Any) -> dict[str, datetime]:
        """When each server first reached its peak of `value` in the range: when it was
        seen (`seen`), not when its sample was written."""
        found = await session.execute(
            select(s.server_name, func.min(seen))
            .join(maxima, and_(maxima.c.server_name == s.server_name, value == peak))
            .where(_in(s.at, rng))
            .group_by(s.server_name)
        )
        return {str(name): at for name, at in found.all()}

    meetings_at = await first_reached(s.active_meetings, maxima.c.meetings, s.meetings_at)
    participants_at = await first_reached(s.participants, maxima.c.participants, s.participants_at)
    rows = (await session.execute(select(maxima))).all()
    return pure.server_peaks_report(
        rng,
        [
            pure.ServerPeak(
                server=str(name),
                samples=int(samples),
                meetings=int(meetings),
                meetings_at=meetings_at.get(str(name)),
                participants=int(participants),
                participants_at=participants_at.get(str(name)),
                cpu_percent=float(cpu),
                memory_percent=float(memory),
            )
            for name, samples, meetings, participants, cpu, memory in rows
        ],
    )


async def _community(session: AsyncSession, rng: pure.DateRange, dialect: str) -> pure.Report:
    """Sums per day; the most connections: the largest sum over servers of one sample
    (the sampler writes every server's row of an interval with the same `at`)."""
    s = ServerSampleRow
    day = local_day(s.at, rng, dialect).label("day")
    found = await session.execute(
        select(
            day,
            func.sum(s.community_signins),
            func.sum(s.community_messages),
            func.sum(s.community_connections),
        )
        .where(_in(s.at, rng))
        .group_by(day, s.at)
    )
    daily: dict[date, tuple[int, int, int]] = {}
    for d, signins, messages, connections in found.all():
        before = daily.get(_day(d), (0, 0, 0))
        daily[_day(d)] = (
            before[0] + int(signins or 0),
            before[1] + int(messages or 0),
            max(before[2], int(connections or 0)),
        )
    return pure.community_report(rng, daily)
