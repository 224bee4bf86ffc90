"""The reports' pure parts: date ranges in a time zone, days, peak concurrency, tables, CSV.

No I/O. moot.ems.store.reports reads the figures from the database and builds the reports
with these functions; docs/admin-guide.md ("Reports") says what each figure means.

A day is a calendar day of the report's time zone: from one local midnight to the next
(23 or 25 hours on the days clocks change). A fact belongs to the day in which it happened,
read on that zone's clock: a login at 22:30 UTC on 24 October 2026 is on the 25th in
Europe/Paris (00:30 there) and on the 24th in UTC.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Three years, a leap day included: longer ranges are refused (the tables would be
# unreadable and the queries long).
MAX_DAYS = 3 * 365 + 1
# Days a report may name (beyond, midnights in some zones are not datetimes).
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)

Cell = int | float | str | None
Row = dict[str, Cell]


class RangeError(ValueError):
    """A report's range or zone that cannot be used; `field` is `from`, `to` or `tz`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class DateRange:
    """The days `first` to `last`, both included, in `zone`."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @property
    def start(self) -> datetime:
        """The first day's local midnight, in UTC."""
        return day_start(self.first, self.zone)

    @property
    def end(self) -> datetime:
        """The local midnight after the last day, in UTC (exclusive)."""
        return day_start(self.last + timedelta(days=1), self.zone)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """When `day` begins in `zone`, in UTC (a midnight that a clock change skips: the
    moment the clock reads it, as zoneinfo's fold=0 gives)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def zone_of(name: str) -> ZoneInfo:
    """An IANA zone by name, or RangeError("tz")."""
    text = name.strip()
    try:
        if not text or text.startswith(("/", ".")) or ".." in text:
            raise ValueError(text)
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, e.g. Europe
        raise RangeError(
            "tz", f"{name!r} is not a time zone: give an IANA name such as Europe/Paris or UTC"
        ) from None


def _date_of(field: str, text: str | None) -> date | None:
    if text is None or not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise RangeError(field, f"{text!r} is not a date: write it as YYYY-MM-DD") from None
    if not EARLIEST <= day <= LATEST:
        raise RangeError(field, f"give a day from {EARLIEST} to {LATEST}")
    return day


def parse_range(
    from_text: str | None, to_text: str | None, tz: str | None, today_utc: datetime
) -> DateRange:
    """The range a reader asked for: `from` and `to` as YYYY-MM-DD (both included) in `tz`.

    Defaults: `tz` UTC; `to` today in that zone; `from` 29 days before `to` (30 days).
    """
    zone = zone_of(tz) if tz and tz.strip() else ZoneInfo("UTC")
    first = _date_of("from", from_text)
    last = _date_of("to", to_text)
    if last is None:
        last = max(today_utc.astimezone(zone).date(), first or date.min)
    if first is None:
        first = last - timedelta(days=29)
    if last < first:
        raise RangeError("to", f"the last day ({last}) is before the first ({first})")
    if (last - first).days + 1 > MAX_DAYS:
        raise RangeError("to", f"a report covers at most {MAX_DAYS} days (three years)")
    return DateRange(first=first, last=last, zone=zone)


def offset_segments(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offset over [start, end): `(until, offset seconds)` pieces in order,
    the last one until `end`. One piece unless the clocks change in the range.

    The database adds the offset of a row's piece to its UTC time to find its local day,
    which needs no time zone support in SQLite.
    """

    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    pieces: list[tuple[datetime, int]] = []
    at, current = start, offset(start)
    step = timedelta(hours=1)  # no zone changes its clocks twice within an hour
    while at < end:
        ahead = min(at + step, end)
        if offset(ahead) == current:
            at = ahead
            continue
        low, high = int(at.timestamp()), int(ahead.timestamp())  # clocks change on a second
        while high - low > 1:
            middle = (low + high) // 2
            if offset(datetime.fromtimestamp(middle, UTC)) == current:
                low = middle
            else:
                high = middle
        change = datetime.fromtimestamp(high, UTC)
        if change >= end:
            break
        pieces.append((change, current))
        at, current = change, offset(change)
    pieces.append((end, current))
    return pieces


# -- peak concurrency ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Peak:
    """The most people present at once, and when that was first reached (None: nobody)."""

    people: int
    at: datetime | None


def daily_peaks(
    stays: Iterable[tuple[str, datetime, datetime | None]], rng: DateRange, now: datetime
) -> dict[date, Peak]:
    """The peak of distinct people in meetings at the same instant, per day of `rng`.

    `stays` are (user name, joined, left) with left None while it lasts (counted until
    `now`). A stay covers [joined, left): someone who leaves at 10:00 and someone who
    joins at 10:00 are not there together. A person counts once however many stays (tabs,
    meetings, a failover's stale stay) they have at that instant.
    """
    start, end = rng.start, rng.end
    events: list[tuple[datetime, int, str]] = []
    for user, joined, left in stays:
        until = min(left if left is not None else now, end)
        begin = max(joined, start)
        if until > begin:
            events.append((begin, 1, user))
            events.append((until, -1, user))
    events.sort(key=lambda e: (e[0], e[1]))  # at one instant, leaves before joins
    present: dict[str, int] = {}
    peaks: dict[date, Peak] = {}
    index = 0

    def apply_until(limit: datetime, inclusive: bool) -> None:
        nonlocal index
        while index < len(events) and (
            events[index][0] < limit or (inclusive and events[index][0] == limit)
        ):
            moment = events[index][0]
            while index < len(events) and events[index][0] == moment:
                _, change, user = events[index]
                count = present.get(user, 0) + change
                if count:
                    present[user] = count
                else:
                    present.pop(user, None)
                index += 1
            if moment >= day_from and len(present) > peak.people:
                peak.people, peak.at = len(present), moment

    for day in rng.days:
        day_from, day_to = day_start(day, rng.zone), day_start(day + timedelta(days=1), rng.zone)
        peak = _MutablePeak(0, None)
        apply_until(day_from, inclusive=True)
        if present:
            peak.people, peak.at = len(present), day_from
        apply_until(day_to, inclusive=False)
        peaks[day] = Peak(peak.people, peak.at)
    return peaks


@dataclass(slots=True)
class _MutablePeak:
    people: int
    at: datetime | None


@dataclass(frozen=True, slots=True)
class DayMoments:
    """What the database tells of one day's moments (instants when someone came or went),
    with the people present just after each: the first moment, the first at which the
    day's most were present, and the last (whose count lasts into the next day)."""

    first_at: datetime
    first_people: int
    best_at: datetime
    best_people: int
    last_people: int


def peaks_of_moments(rng: DateRange, moments: dict[date, DayMoments]) -> dict[date, Peak]:
    """daily_peaks from the database's summary of each day's moments (a day without any
    keeps the count of the last moment before it). The same figures as daily_peaks."""
    peaks: dict[date, Peak] = {}
    carried = 0  # the stays are cut to the range: nobody is there before its first moment
    for day in rng.days:
        day_from = day_start(day, rng.zone)
        seen = moments.get(day)
        at_midnight = carried
        if seen is not None and seen.first_at == day_from:
            at_midnight = seen.first_people
        if seen is not None and seen.best_people > at_midnight:
            peaks[day] = Peak(seen.best_people, seen.best_at)
        else:
            peaks[day] = Peak(at_midnight, day_from if at_midnight else None)
        if seen is not None:
            carried = seen.last_people
    return peaks


def overall_peak(peaks: dict[date, Peak]) -> Peak:
    best = Peak(0, None)
    for day in sorted(peaks):
        if peaks[day].people > best.people:
            best = peaks[day]
    return best


# -- the reports ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    # "day", "text", "number", "time" (an ISO time with its offset): how a page shows it.
    kind: str = "number"


@dataclass(frozen=True, slots=True)
class Chart:
    """What the chart draws: one value per label per series."""

    kind: str  # "line", "bar" or "stacked"
    labels: list[str]
    series: list[tuple[str, list[int | float]]]
    y_title: str


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    title: str
    rng: DateRange
    columns: tuple[Column, ...]
    rows: list[Row]
    # Figures over the whole range (not always the sum of the rows: distinct people).
    summary: list[Row] = field(default_factory=list)
    chart: Chart | None = None


@dataclass(frozen=True, slots=True)
class ReportKind:
    name: str
    title: str
    description: str


REPORTS: tuple[ReportKind, ...] = (
    ReportKind(
        "logins",
        "Community statistics",
        "Sign-ins per day, distinct users, and the peak of people in meetings at once.",
    ),
    ReportKind(
        "login_failures", "Login failures", "Failed sign-ins per day, user names and addresses."
    ),
    ReportKind(
        "meetings",
        "Meeting statistics",
        "Meetings that started each day, by type: how long they ran, how many attended.",
    ),
    ReportKind(
        "capacity_warnings",
        "Capacity warnings",
        "Meetings placed or grown over a server's limits, per day and kind.",
    ),
    ReportKind(
        "server_peaks",
        "Peak usage of each server",
        "The most meetings, participants, CPU and memory each room server had, and when.",
    ),
    ReportKind(
        "community",
        "Presence and instant messages",
        "Community sign-ins and instant messages per day (counted, never read), and the "
        "most community connections at once.",
    ),
)
REPORT_NAMES = tuple(r.name for r in REPORTS)
MEETING_TYPES = ("collaboration", "broadcast")
WARNING_KINDS = ("no_room", "meeting_too_large", "participants_over_limit")


def kind_of(name: str) -> ReportKind | None:
    return next((r for r in REPORTS if r.name == name), None)


def _title(name: str) -> str:
    kind = kind_of(name)
    return kind.title if kind else name


def iso_local(at: datetime | None, zone: ZoneInfo) -> str | None:
    return at.astimezone(zone).isoformat(timespec="seconds") if at is not None else None


def _labels(rng: DateRange) -> list[str]:
    return [d.isoformat() for d in rng.days]


def logins_report(
    rng: DateRange,
    daily: dict[date, tuple[int, int]],
    distinct_users: int,
    peaks: dict[date, Peak],
) -> Report:
    """`daily`: day -> (logins, distinct users); `distinct_users` over the whole range."""
    rows: list[Row] = []
    for day in rng.days:
        logins, users = daily.get(day, (0, 0))
        peak = peaks.get(day, Peak(0, None))
        rows.append(
            {
                "day": day.isoformat(),
                "logins": logins,
                "distinct_users": users,
                "peak_concurrent_users": peak.people,
                "peak_at": iso_local(peak.at, rng.zone),
            }
        )
    best = overall_peak(peaks)
    summary: list[Row] = [
        {
            "day": "all days",
            "logins": sum(v[0] for v in daily.values()),
            "distinct_users": distinct_users,
            "peak_concurrent_users": best.people,
            "peak_at": iso_local(best.at, rng.zone),
        }
    ]
    return Report(
        name="logins",
        title=_title("logins"),
        rng=rng,
        columns=(
            Column("day", "Day", "day"),
            Column("logins", "Logins"),
            Column("distinct_users", "Distinct users"),
            Column("peak_concurrent_users", "Peak concurrent users"),
            Column("peak_at", "Peak reached at", "time"),
        ),
        rows=rows,
        summary=summary,
        chart=Chart(
            "line",
            _labels(rng),
            [
                ("Logins", [int(r["logins"] or 0) for r in rows]),
                ("Distinct users", [int(r["distinct_users"] or 0) for r in rows]),
                ("Peak concurrent users", [int(r["peak_concurrent_users"] or 0) for r in rows]),
            ],
            "people",
        ),
    )


def _figures_per_day(
    name: str,
    rng: DateRange,
    columns: tuple[Column, ...],
    daily: Mapping[date, tuple[int, ...]],
    totals: tuple[int, ...],
    chart: tuple[str, Sequence[tuple[str, str]], str],
) -> Report:
    """A report of one row a day: the day, then the day's figures from `daily` under the
    other columns (zeros on a day without); `totals` in the summary row. `chart`: its
    kind, (label, column key) of each series, and the y axis' title."""
    keys = [c.key for c in columns if c.key != "day"]
    none = (0,) * len(keys)
    rows: list[Row] = [
        {"day": day.isoformat(), **dict(zip(keys, daily.get(day, none), strict=True))}
        for day in rng.days
    ]
    kind, series, y_title = chart
    return Report(
        name=name,
        title=_title(name),
        rng=rng,
        columns=columns,
        rows=rows,
        summary=[{"day": "all days", **dict(zip(keys, totals, strict=True))}],
        chart=Chart(
            kind,
            _labels(rng),
            [(label, [int(r[key] or 0) for r in rows]) for label, key in series],
            y_title,
        ),
    )


def login_failures_report(
    rng: DateRange, daily: dict[date, tuple[int, int, int]], totals: tuple[int, int, int]
) -> Report:
    """`daily`: day -> (failures, distinct user names, distinct addresses); `totals` the
    same over the whole range."""
    return _figures_per_day(
        "login_failures",
        rng,
        (
            Column("day", "Day", "day"),
            Column("failures", "Failed sign-ins"),
            Column("user_names", "Distinct user names"),
            Column("addresses", "Distinct addresses"),
        ),
        daily,
        totals,
        ("bar", [("Failed sign-ins", "failures")], "failed sign-ins"),
    )


@dataclass(frozen=True, slots=True)
class MeetingFigures:
    """Meetings that started (in a day, of a type): `ended` of them have a duration."""

    meetings: int = 0
    ended: int = 0
    seconds: int = 0
    participants: int = 0


def _meeting_row(day: str, kind: str, f: MeetingFigures) -> Row:
    return {
        "day": day,
        "type": kind,
        "meetings": f.meetings,
        "ended": f.ended,
        "minutes": round(f.seconds / 60, 1),
        "average_minutes": round(f.seconds / 60 / f.ended, 1) if f.ended else None,
        "participants": f.participants,
        "average_participants": round(f.participants / f.meetings, 1) if f.meetings else None,
    }


def _add(a: MeetingFigures, b: MeetingFigures) -> MeetingFigures:
    return MeetingFigures(
        a.meetings + b.meetings,
        a.ended + b.ended,
        a.seconds + b.seconds,
        a.participants + b.participants,
    )


def meetings_report(rng: DateRange, daily: dict[tuple[date, str], MeetingFigures]) -> Report:
    """`daily`: (day, type) -> figures; a row per day and type (both types every day)."""
    types = list(MEETING_TYPES) + sorted({t for _, t in daily} - set(MEETING_TYPES))
    rows: list[Row] = []
    per_type: dict[str, MeetingFigures] = {t: MeetingFigures() for t in types}
    for day in rng.days:
        for kind in types:
            figures = daily.get((day, kind), MeetingFigures())
            per_type[kind] = _add(per_type[kind], figures)
            rows.append(_meeting_row(day.isoformat(), kind, figures))
    everything = MeetingFigures()
    for figures in per_type.values():
        everything = _add(everything, figures)
    summary = [_meeting_row("all days", kind, per_type[kind]) for kind in types]
    summary.append(_meeting_row("all days", "all types", everything))
    return Report(
        name="meetings",
        title=_title("meetings"),
        rng=rng,
        columns=(
            Column("day", "Day", "day"),
            Column("type", "Type", "text"),
            Column("meetings", "Meetings"),
            Column("ended", "Ended"),
            Column("minutes", "Minutes (ended)"),
            Column("average_minutes", "Average minutes"),
            Column("participants", "Participants"),
            Column("average_participants", "Average participants per meeting"),
        ),
        rows=rows,
        summary=summary,
        chart=Chart(
            "stacked",
            _labels(rng),
            [
                (
                    kind.capitalize(),
                    [daily.get((day, kind), MeetingFigures()).meetings for day in rng.days],
                )
                for kind in types
            ],
            "meetings",
        ),
    )


def capacity_warnings_report(
    rng: DateRange,
    daily: dict[tuple[date, str], int],
    meetings_per_day: dict[date, int],
    total_meetings: int,
) -> Report:
    """`daily`: (day, kind) -> warnings; `meetings_per_day`: distinct meetings warned about."""
    rows: list[Row] = []
    for day in rng.days:
        row: Row = {"day": day.isoformat()}
        for kind in WARNING_KINDS:
            row[kind] = daily.get((day, kind), 0)
        row["warnings"] = sum(n for (d, _), n in daily.items() if d == day)
        row["meetings"] = meetings_per_day.get(day, 0)
        rows.append(row)
    summary: Row = {"day": "all days"}
    for kind in WARNING_KINDS:
        summary[kind] = sum(n for (_, k), n in daily.items() if k == kind)
    summary["warnings"] = sum(daily.values())
    summary["meetings"] = total_meetings
    return Report(
        name="capacity_warnings",
        title=_title("capacity_warnings"),
        rng=rng,
        columns=(
            Column("day", "Day", "day"),
            Column("no_room", "No room"),
            Column("meeting_too_large", "Meeting too large"),
            Column("participants_over_limit", "Participants over limit"),
            Column("warnings", "All warnings"),
            Column("meetings", "Meetings warned about"),
        ),
        rows=rows,
        summary=[summary],
        chart=Chart(
            "stacked",
            _labels(rng),
            [
                (label, [int(r[kind] or 0) for r in rows])
                for kind, label in (
                    ("no_room", "No room"),
                    ("meeting_too_large", "Meeting too large"),
                    ("participants_over_limit", "Participants over limit"),
                )
            ],
            "warnings",
        ),
    )


@dataclass(frozen=True, slots=True)
class ServerPeak:
    server: str
    samples: int
    meetings: int
    meetings_at: datetime | None
    participants: int
    participants_at: datetime | None
    cpu_percent: float
    memory_percent: float


def server_peaks_report(rng: DateRange, peaks: Sequence[ServerPeak]) -> Report:
    rows: list[Row] = [
        {
            "server": p.server,
            "samples": p.samples,
            "peak_meetings": p.meetings,
            "peak_meetings_at": iso_local(p.meetings_at, rng.zone),
            "peak_participants": p.participants,
            "peak_participants_at": iso_local(p.participants_at, rng.zone),
            "peak_cpu_percent": round(p.cpu_percent, 1),
            "peak_memory_percent": round(p.memory_percent, 1),
        }
        for p in sorted(peaks, key=lambda p: p.server)
    ]
    return Report(
        name="server_peaks",
        title=_title("server_peaks"),
        rng=rng,
        columns=(
            Column("server", "Room server", "text"),
            Column("samples", "Samples"),
            Column("peak_meetings", "Peak meetings"),
            Column("peak_meetings_at", "Peak meetings at", "time"),
            Column("peak_participants", "Peak participants"),
            Column("peak_participants_at", "Peak participants at", "time"),
            Column("peak_cpu_percent", "Peak CPU %"),
            Column("peak_memory_percent", "Peak memory %"),
        ),
        rows=rows,
        chart=Chart(
            "bar",
            [str(r["server"]) for r in rows],
            [
                ("Peak participants", [int(r["peak_participants"] or 0) for r in rows]),
                ("Peak meetings", [int(r["peak_meetings"] or 0) for r in rows]),
            ],
            "at once",
        ),
    )


# -- CSV ------------------------------------------------------------------------------

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    return str(value)


def csv_text(report: Report) -> str:
    """The report's table as CSV: a header of column keys, one line per row, then the
    summary rows the page shows below the table (first column `all days`): figures over
    the whole range, such as distinct users or the peak, cannot be summed from the days."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in report.columns])
    for row in [*report.rows, *report.summary]:
        writer.writerow([csv_cell(row.get(c.key)) for c in report.columns])
    return out.getvalue()


def csv_filename(report: Report) -> str:
    return f"moot-{report.name}-{report.rng.first}-to-{report.rng.last}.csv"


def community_report(rng: DateRange, daily: dict[date, tuple[int, int, int]]) -> Report:
    """`daily`: day -> (community sign-ins, instant messages, most connections at once)."""
    totals = (
        sum(v[0] for v in daily.values()),
        sum(v[1] for v in daily.values()),
        max((v[2] for v in daily.values()), default=0),
    )
    return _figures_per_day(
        "community",
        rng,
        (
            Column("day", "Day", "day"),
            Column("signins", "Community sign-ins"),
            Column("messages", "Instant messages"),
            Column("peak_connections", "Most connections at once"),
        ),
        daily,
        totals,
        ("line", [("Sign-ins", "signins"), ("Instant messages", "messages")], "count"),
    )
