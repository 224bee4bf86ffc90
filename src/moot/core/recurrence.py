"""Recurring meetings: RFC 5545 repeat rules, expanded in the meeting's own time zone.

A repeating meeting is stored as its first start, its duration, an RRULE, the IANA time zone it
was planned in, and its exceptions (occurrences skipped or moved). Everything here is pure: no
I/O, so the store, the API, the pages and the iCalendar export (`moot.core.ical`) all agree on
exactly which meetings happen when.

Why it works the way it does:

- **dateutil expands the rule**, never our own date arithmetic, so what Moot lists is what any
  RFC 5545 calendar shows for the exported rule. The rule is expanded in *wall-clock time of
  the meeting's zone*: a weekly 09:00 Europe/Berlin meeting stays at 09:00 in Berlin when
  daylight saving time ends (its UTC start moves by an hour). A local time that does not exist
  (02:30 on the night clocks go forward) is read with the offset before the gap, as RFC 5545
  section 3.3.5 says, so that meeting happens at 03:30 rather than not at all.
- **Only the rule parts a meeting needs**: FREQ DAILY, WEEKLY, MONTHLY or YEARLY, INTERVAL,
  BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS, COUNT, UNTIL and WKST. The time of day always comes
  from the meeting's start, so BYHOUR and friends are refused, as are HOURLY and finer.
- **The start is the first occurrence.** RFC 5545 leaves a DTSTART that the rule does not
  produce undefined and calendar clients disagree about it, so such a rule is refused with the
  date the rule would have started on.
- **Ends and the unbounded rule.** A rule with COUNT or UNTIL may have at most
  `MAX_OCCURRENCES` (1000) occurrences and must end within `HORIZON_YEARS` (25) years of its
  start: more is almost always a typo (COUNT=10000, UNTIL=20991231) and every one of them is
  a booking. A rule with neither is allowed, because "repeats weekly, no end date" is what
  people expect of a standing meeting; Moot lists it up to `HORIZON_YEARS` after its start and
  no further (a series edited or ended long before that, in practice), and reports it as
  unbounded (`occurrence_count` and `last_end` return None), so the store must treat it as
  possibly overlapping any later range. The exported RRULE keeps no end, as the user asked.
- **Ranges.** `occurrences` returns every occurrence that *overlaps* the half-open range
  [range_from, range_to): a meeting from 23:30 to 00:30 belongs to both days. Each series'
  original starts are expanded once per process, kept as UTC microseconds in a compact array
  (lazily, as far as queries reach, for unbounded rules) and cached per (rule, start, zone), so
  a month view that asks about many meetings does a binary search per meeting, not an
  expansion from the first occurrence every time.
- **Bounded work.** dateutil checks UNTIL only on dates a rule produces, so a rule that matches
  no date at all (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) would scan every day up to the year 9999
  (seconds of CPU). The rule is therefore expanded in a copy of the calendar shifted by whole
  400-year Gregorian cycles (identical weekdays and leap years), placed so that the horizon lies
  shortly before 9999: any scan ends within about 400 years of calendar, whatever the rule.
- **Exceptions** name an occurrence by its original start instant (aware UTC). A skipped one
  does not happen; a moved one happens at its new time (and is found by ranges there, not at its
  old time). Exceptions for dates the rule does not produce (left over after the rule changed)
  are ignored. A meeting without a rule has exactly one occurrence: it is rescheduled by
  changing its start, so exceptions do not apply to it.
"""

from __future__ import annotations

import re
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from types import MappingProxyType
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr

__all__ = [
    "HORIZON_YEARS",
    "MAX_INTERVAL",
    "MAX_OCCURRENCES",
    "NO_EXCEPTIONS",
    "Exceptions",
    "Moved",
    "Occurrence",
    "RecurrenceError",
    "build_rule",
    "first_start",
    "is_occurrence",
    "last_end",
    "normalize_rule",
    "occurrence_count",
    "occurrences",
    "series_horizon",
]

MAX_OCCURRENCES: Final = 1000
"""A rule with COUNT or UNTIL may produce at most this many occurrences."""
HORIZON_YEARS: Final = 25
"""No occurrence is listed later than this many years after the series' start."""
MAX_INTERVAL: Final = 999

_FREQS: Final = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_DAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_PARTS: Final = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS")
_ALLOWED: Final = frozenset((*_PARTS, "COUNT", "UNTIL", "WKST"))
_NUMBER = re.compile(r"[+-]?\d{1,4}")
_BYDAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL = re.compile(r"(\d{8})(?:T(\d{6})(Z?))?")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CYCLE_YEARS: Final = 400  # the Gregorian calendar repeats exactly, weekdays included
_LAST_YEAR: Final = 9998  # shifted expansions end before datetime.MAXYEAR runs out


class RecurrenceError(ValueError):
    """A repeat rule Moot cannot use, with a message that says what to change."""


# --- the rule ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    """A parsed, checked repeat rule; UNTIL is resolved to an aware UTC instant."""

    freq: str
    interval: int = 1
    bymonth: tuple[int, ...] = ()
    bymonthday: tuple[int, ...] = ()
    byday: tuple[tuple[int, int], ...] = ()  # (n-th or 0, weekday Mon=0)
    bysetpos: tuple[int, ...] = ()
    wkst: int = 0
    count: int | None = None
    until: datetime | None = None

    @property
    def bounded(self) -> bool:
        return self.count is not None or self.until is not None

    def _body(self, *, with_wkst: bool) -> list[str]:
        parts = [f"FREQ={self.freq}"]
        if self.interval != 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.bymonth:
            parts.append("BYMONTH=" + ",".join(map(str, self.bymonth)))
        if self.bymonthday:
            parts.append("BYMONTHDAY=" + ",".join(map(str, self.bymonthday)))
        if self.byday:
            days = (f"{n:+d}{_DAYS[d]}" if n else _DAYS[d] for n, d in self.byday)
            parts.append("BYDAY=" + ",".join(days))
        if self.bysetpos:
            parts.append("BYSETPOS=" + ",".join(map(str, self.bysetpos)))
        if with_wkst or self.wkst != 0:
            parts.append(f"WKST={_DAYS[self.wkst]}")
        return parts

    def text(self) -> str:
        """The canonical form: fixed part order, no defaults, UNTIL in UTC."""
        parts = self._body(with_wkst=False)
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        if self.until is not None:
            parts.append(f"UNTIL={self.until:%Y%m%dT%H%M%SZ}")
        return ";".join(parts)

    def expansion_text(self, until_wall: datetime) -> str:
        """What dateutil expands: no COUNT (counted by us), a naive UNTIL, an explicit WKST.

        WKST is always given because dateutil's default is `calendar.firstweekday()`, a
        process-wide setting; RFC 5545's default is Monday.
        """
        parts = self._body(with_wkst=True)
        parts.append(f"UNTIL={until_wall:%Y%m%dT%H%M%S}")
        return ";".join(parts)


def _int(value: str, low: int, high: int, message: str) -> int:
    if not _NUMBER.fullmatch(value):
        raise RecurrenceError(message)
    number = int(value)
    if not low <= number <= high:
        raise RecurrenceError(message)
    return number


def _int_list(value: str, low: int, high: int, message: str) -> tuple[int, ...]:
    numbers = {_int(item.strip(), low, high, message) for item in value.split(",")}
    if 0 in numbers:
        raise RecurrenceError(message)
    # positive values first, then negative ones (from the end), each ascending
    return tuple(sorted(numbers, key=lambda n: (n < 0, n)))


def _parse_until(value: str, zone: tzinfo) -> datetime:
    match = _UNTIL.fullmatch(value)
    message = f"UNTIL={value} is not a date like 20261231 or a UTC time like 20261231T170000Z"
    if not match:
        raise RecurrenceError(message)
    day_text, time_text, utc = match.groups()
    try:
        day = datetime.strptime(day_text, "%Y%m%d").date()
        clock = datetime.strptime(time_text, "%H%M%S").time() if time_text else None
    except ValueError:
        raise RecurrenceError(message) from None
    if clock is None:
        # a date: every meeting that starts on that day in the meeting's zone still happens
        return _local_midnight(day + timedelta(days=1), zone) - timedelta(seconds=1)
    if utc:
        return datetime.combine(day, clock, tzinfo=UTC)
    # a floating local time: read it in the meeting's zone
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _parse(text: str, zone: tzinfo) -> _Rule:
    body = text.strip()
    if body[:6].upper() == "RRULE:":
        body = body[6:].strip()
    if not body:
        raise RecurrenceError("the repeat rule is empty; give one like FREQ=WEEKLY;BYDAY=MO")
    if "\n" in body or "\r" in body or ":" in body:
        raise RecurrenceError(
            "give only the repeat rule itself, like FREQ=WEEKLY;BYDAY=MO "
            "(no DTSTART, EXDATE or other lines)"
        )
    values: dict[str, str] = {}
    for raw in body.split(";"):
        part = raw.strip()
        if not part:
            continue  # tolerate "FREQ=DAILY;" and doubled separators
        name, sep, value = part.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not sep or not name or not value:
            raise RecurrenceError(
                f"{part!r} is not NAME=VALUE; a repeat rule is parts like FREQ=WEEKLY "
                "separated by ';', e.g. FREQ=WEEKLY;BYDAY=MO,WE"
            )
        if name not in _ALLOWED:
            hint = (
                " (a meeting repeats at the time of day it starts)"
                if name in {"BYHOUR", "BYMINUTE", "BYSECOND"}
                else ""
            )
            raise RecurrenceError(
                f"{name} is not supported in a meeting's repeat rule{hint}; use only FREQ, "
                "INTERVAL, BYDAY, BYMONTHDAY, BYMONTH, BYSETPOS, COUNT, UNTIL and WKST"
            )
        if name in values:
            raise RecurrenceError(f"{name} appears twice in the repeat rule")
        values[name] = value

    freq = values.get("FREQ")
    if freq not in _FREQS:
        got = f" (not FREQ={freq})" if freq else ""
        raise RecurrenceError(f"the repeat rule needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY{got}")

    interval = 1
    if "INTERVAL" in values:
        interval = _int(
            values["INTERVAL"],
            1,
            MAX_INTERVAL,
            f"INTERVAL must be a whole number from 1 to {MAX_INTERVAL}",
        )

    count: int | None = None
    if "COUNT" in values:
        count = _int(
            values["COUNT"],
            1,
            MAX_OCCURRENCES,
            f"COUNT must be a whole number from 1 to {MAX_OCCURRENCES}: a repeat rule may have "
            f"at most {MAX_OCCURRENCES} occurrences",
        )
    until: datetime | None = None
    if "UNTIL" in values:
        if count is not None:
            raise RecurrenceError(
                "a repeat rule may not have both COUNT and UNTIL: end it after a number of "
                "meetings or on a date, not both"
            )
        until = _parse_until(values["UNTIL"], zone)

    bymonth: tuple[int, ...] = ()
    if "BYMONTH" in values:
        bymonth = _int_list(values["BYMONTH"], 1, 12, "BYMONTH values must be months from 1 to 12")

    bymonthday: tuple[int, ...] = ()
    if "BYMONTHDAY" in values:
        if freq == "WEEKLY":
            raise RecurrenceError(
                "BYMONTHDAY does not go with FREQ=WEEKLY (RFC 5545); use FREQ=MONTHLY"
            )
        bymonthday = _int_list(
            values["BYMONTHDAY"],
            -31,
            31,
            "BYMONTHDAY values must be days of the month from 1 to 31 "
            "(or from the end: -1 is the last day)",
        )

    byday: set[tuple[int, int]] = set()
    if "BYDAY" in values:
        for item in (item.strip() for item in values["BYDAY"].split(",")):
            match = _BYDAY.fullmatch(item)
            if not match:
                raise RecurrenceError(
                    f"BYDAY value {item!r} is not a weekday: use MO, TU, WE, TH, FR, SA, SU "
                    "(or 1MO, -1FR and the like with FREQ=MONTHLY or YEARLY)"
                )
            nth = int(match.group(1)) if match.group(1) else 0
            if nth:
                if freq not in ("MONTHLY", "YEARLY"):
                    raise RecurrenceError(
                        f"BYDAY={item} (the n-th weekday) only works with FREQ=MONTHLY or YEARLY"
                    )
                # the n-th weekday of the month, or of the year when no BYMONTH narrows it
                limit = 53 if freq == "YEARLY" and not bymonth else 5
                if not 1 <= abs(nth) <= limit:
                    raise RecurrenceError(
                        f"BYDAY={item}: the n-th weekday must be from 1 to {limit} "
                        f"or from -1 to -{limit}"
                    )
            byday.add((nth, _DAYS.index(match.group(2))))

    bysetpos: tuple[int, ...] = ()
    if "BYSETPOS" in values:
        if not (bymonth or bymonthday or byday):
            raise RecurrenceError(
                "BYSETPOS needs BYDAY, BYMONTHDAY or BYMONTH to choose from, "
                "e.g. FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1 (the last working day)"
            )
        bysetpos = _int_list(
            values["BYSETPOS"],
            -366,
            366,
            "BYSETPOS values must be from 1 to 366 or from -1 to -366",
        )

    wkst = 0
    if "WKST" in values:
        if values["WKST"] not in _DAYS:
            raise RecurrenceError(
                f"WKST={values['WKST']} is not a weekday: use MO, TU, WE, TH, FR, SA or SU"
            )
        wkst = _DAYS.index(values["WKST"])

    return _Rule(
        freq=freq,
        interval=interval,
        bymonth=bymonth,
        bymonthday=bymonthday,
        byday=tuple(sorted(byday, key=lambda nd: (nd[1], nd[0]))),
        bysetpos=bysetpos,
        wkst=wkst,
        count=count,
        until=until,
    )


# --- time helpers ---------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise RecurrenceError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from None


def _zone_for(start: datetime, timezone: str | None) -> tzinfo:
    _check_aware("start", start)
    if timezone is not None:
        return _zone(timezone)
    assert start.tzinfo is not None
    return start.tzinfo


def _check_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (with a time zone)")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _local_midnight(day: date, zone: tzinfo) -> datetime:
    """The first instant of `day` in `zone`, in UTC."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _us(value: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch: what the caches keep."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _describe(value: datetime, zone: tzinfo) -> str:
    local = value.astimezone(zone)
    return (
        f"{_DAY_NAMES[local.weekday()]} {local.day} {_MONTH_NAMES[local.month - 1]} "
        f"{local.year}, {local:%H:%M}"
    )


def series_horizon(start: datetime) -> datetime:
    """The instant after which no occurrence of the series starting at `start` is listed."""
    _check_aware("start", start)
    return _utc(start) + relativedelta(years=HORIZON_YEARS)


# --- expansion --------------------------------------------------------------------------------


def _expand(rule: _Rule, start: datetime, zone: tzinfo, end: datetime) -> Iterator[datetime]:
    """The rule's original starts, in aware UTC, from `start` up to and including `end`.

    dateutil expands naive wall-clock times (the rule lives in the meeting's zone), in a copy of
    the calendar shifted by whole 400-year cycles so that `end` lies shortly before the year
    9999, where dateutil stops: a rule that matches rarely or never cannot scan for long.
    """
    wall = start.astimezone(zone).replace(tzinfo=None, microsecond=0, fold=0)
    # one day of slack: the exact limit is applied below, on UTC instants
    end_wall = end.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    shift = max(0, (_LAST_YEAR - end_wall.year) // _CYCLE_YEARS) * _CYCLE_YEARS
    expansion = rrulestr(
        rule.expansion_text(end_wall.replace(year=end_wall.year + shift)),
        dtstart=wall.replace(year=wall.year + shift),
    )
    produced = 0
    found = iter(expansion)
    while rule.count is None or produced < rule.count:
        try:
            shifted = next(found)
        except StopIteration:
            return
        except (ValueError, OverflowError):
            # dateutil ran past 9999-12-31 while filling its last period: far past `end`
            return
        local = shifted.replace(year=shifted.year - shift)
        if local == wall:
            instant = start  # exactly the start, even in the repeated hour of a DST change
        else:
            instant = _utc(local.replace(tzinfo=zone, microsecond=start.microsecond))
        if instant > end:
            return
        produced += 1
        yield instant


class _Series:
    """The original starts of one repeat rule, kept as UTC microseconds.

    A bounded rule is expanded completely when the series is built (at most
    MAX_OCCURRENCES + 1 dates are needed to check it); an unbounded one is expanded lazily,
    as far as queries reach, up to its horizon.
    """

    __slots__ = ("_found", "_lock", "_starts", "bounded", "start")

    def __init__(self, rule: _Rule | None, start: datetime, zone: tzinfo) -> None:
        self.start = start
        self.bounded = rule is None or rule.bounded
        self._starts = array("q", [_us(start)])
        self._found: Iterator[datetime] | None = None
        self._lock = threading.Lock()
        if rule is None:
            return
        if start.year > datetime.max.year - HORIZON_YEARS - 2:
            raise RecurrenceError("a repeating meeting must start before the year 9970")
        horizon = series_horizon(start)
        if rule.until is not None:
            if rule.until < start:
                raise RecurrenceError(
                    f"UNTIL lies before the start: the repeat rule ends on "
                    f"{_describe(rule.until, zone)}, the first meeting is on "
                    f"{_describe(start, zone)}"
                )
            if rule.until > horizon:
                raise RecurrenceError(
                    f"UNTIL lies more than {HORIZON_YEARS} years after the start; a repeat rule "
                    f"may span at most {HORIZON_YEARS} years (leave out UNTIL and COUNT for a "
                    "meeting without an end date)"
                )
        end = rule.until if rule.until is not None else horizon
        found = _expand(rule, start, zone, end)
        first = next(found, None)
        if first is None:
            raise RecurrenceError(
                f"the repeat rule {rule.text()} falls on no date within {HORIZON_YEARS} years of "
                "the start; check BYMONTH, BYMONTHDAY, BYDAY and BYSETPOS"
            )
        if first != start:
            raise RecurrenceError(
                f"the first meeting ({_describe(start, zone)}) is not on a day the repeat rule "
                f"{rule.text()} falls on (its first would be {_describe(first, zone)}); start "
                "the meeting on its first repeat, or change the rule"
            )
        if not rule.bounded:
            self._found = found
            return
        rest = [_us(instant) for _, instant in zip(range(MAX_OCCURRENCES), found, strict=False)]
        self._starts.extend(rest)
        if len(self._starts) > MAX_OCCURRENCES:
            raise RecurrenceError(
                f"a repeat rule may have at most {MAX_OCCURRENCES} occurrences and "
                f"{rule.text()} has more; end it sooner, or leave out UNTIL for a meeting "
                "without an end date"
            )
        if rule.count is not None and len(self._starts) < rule.count:
            raise RecurrenceError(
                f"the repeat rule's {rule.count} occurrences reach more than {HORIZON_YEARS} "
                f"years past the start; a repeat rule may span at most {HORIZON_YEARS} years"
            )

    def _fill(self, upto: int) -> array[int]:
        """Expand (under the lock) until a start >= `upto` is known or the rule ends."""
        starts = self._starts
        while self._found is not None and starts[-1] < upto:
            instant = next(self._found, None)
            if instant is None:
                self._found = None
            else:
                starts.append(_us(instant))
        return starts

    def window(self, after: datetime, before: datetime) -> list[tuple[int, datetime]]:
        """(index, original start) for every start s with after < s < before."""
        low, high = _us(after), _us(before)
        with self._lock:
            starts = self._fill(high)
            first, last = bisect_right(starts, low), bisect_left(starts, high)
            return [(i, _from_us(starts[i])) for i in range(first, last)]

    def index_of(self, instant: datetime) -> int | None:
        key = _us(instant)
        with self._lock:
            starts = self._fill(key)
            i = bisect_left(starts, key)
            return i if i < len(starts) and starts[i] == key else None

    def count(self) -> int | None:
        return len(self._starts) if self.bounded else None

    def last(self) -> datetime | None:
        return _from_us(self._starts[-1]) if self.bounded else None


@lru_cache(maxsize=4096)
def _cached_series(rule: str, start: datetime, zone: tzinfo) -> _Series | str:
    """A checked series, or the message of the RecurrenceError it raised (also cached).

    The message is kept rather than the exception: raising one exception object again and
    again would grow its traceback.
    """
    try:
        return _Series(_parse(rule, zone), start, zone)
    except RecurrenceError as exc:
        return str(exc)


def _series(rule: str | None, start: datetime, zone: tzinfo) -> _Series:
    _check_aware("start", start)
    start = _utc(start)
    if rule is None:
        return _Series(None, start, zone)
    found = _cached_series(rule.strip(), start, zone)
    if isinstance(found, str):
        raise RecurrenceError(found)
    return found


# --- public API: rules ------------------------------------------------------------------------


def normalize_rule(text: str, start: datetime, *, timezone: str | None = None) -> str:
    """Check a repeat rule for a meeting starting at `start`; return its canonical form.

    `text` may carry a leading "RRULE:". The rule is read in `timezone` (an IANA name; by
    default the zone of `start`): a date-only UNTIL includes every meeting that starts on that
    day there, a floating UNTIL is local time there. The result has no "RRULE:" prefix, a fixed
    part order, no default values, and UNTIL as a UTC time (…Z). Raises RecurrenceError.
    """
    zone = _zone_for(start, timezone)
    rule = _parse(text, zone)
    _series(rule.text(), start, zone)  # the checks that need the dates themselves
    return rule.text()


def build_rule(
    freq: Literal["daily", "weekly", "monthly"],
    *,
    interval: int = 1,
    weekdays: Sequence[int] = (),
    until: date | None = None,
    count: int | None = None,
    start: datetime,
    timezone: str | None = None,
) -> str:
    """The rule the new-meeting form's "Repeat" controls describe, in canonical form.

    - daily: every `interval` days;
    - weekly: every `interval` weeks on `weekdays` (Mon=0 … Sun=6; default: the start's day,
      which must be one of them);
    - monthly: every `interval` months on the start's day of the month; a month too short for
      it gets its last day instead (the 31st becomes 30 April, 28 or 29 February), as people
      expect of "monthly on the 31st" rather than RFC 5545's skipping of those months;
    - ends after `count` meetings, or with the last one on `until` (a date in the meeting's
      zone, inclusive), or never.

    Days are those of `timezone` (by default the zone of `start`). Raises RecurrenceError.
    """
    zone = _zone_for(start, timezone)
    local = start.astimezone(zone)
    if freq not in ("daily", "weekly", "monthly"):
        raise RecurrenceError("repeat daily, weekly or monthly")
    if isinstance(interval, bool) or not isinstance(interval, int):
        raise TypeError("interval must be an int")
    unit = {"daily": "days", "weekly": "weeks", "monthly": "months"}[freq]
    if not 1 <= interval <= MAX_INTERVAL:
        raise RecurrenceError(f"repeat every 1 to {MAX_INTERVAL} {unit}")
    if count is not None and until is not None:
        raise RecurrenceError(
            "a repeat rule may not have both COUNT and UNTIL: end it after a number of "
            "meetings or on a date, not both"
        )
    parts = [f"FREQ={freq.upper()}"]
    if interval != 1:
        parts.append(f"INTERVAL={interval}")
    if freq == "weekly":
        days = sorted(set(weekdays)) or [local.weekday()]
        if any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise RecurrenceError("weekdays are numbers from 0 (Monday) to 6 (Sunday)")
        if local.weekday() not in days:
            chosen = ", ".join(_DAY_NAMES[d] for d in days)
            raise RecurrenceError(
                f"the first meeting is on a {_DAY_NAMES[local.weekday()]}, which is not one of "
                f"the chosen days ({chosen}); choose it too, or start on one of them"
            )
        parts.append("BYDAY=" + ",".join(_DAYS[d] for d in days))
    elif weekdays:
        raise RecurrenceError("weekdays can only be chosen for a weekly repeat")
    if freq == "monthly":
        if local.day <= 28:
            parts.append(f"BYMONTHDAY={local.day}")
        elif local.day == 31:
            parts.append("BYMONTHDAY=-1")
        else:  # the 29th or 30th, or the last day of a shorter month
            parts.append(f"BYMONTHDAY={local.day},-1;BYSETPOS=1")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError("count must be an int")
        if not 1 <= count <= MAX_OCCURRENCES:
            raise RecurrenceError(
                f"repeat 1 to {MAX_OCCURRENCES} times: a repeat rule may have at most "
                f"{MAX_OCCURRENCES} occurrences"
            )
        parts.append(f"COUNT={count}")
    if until is not None:
        if isinstance(until, datetime):
            raise TypeError("until is a date (the day of the last meeting), not a datetime")
        if until < local.date():
            raise RecurrenceError(
                f"the end date {until.isoformat()} lies before the first meeting "
                f"({_describe(start, zone)}); UNTIL lies before the start"
            )
        parts.append(f"UNTIL={until:%Y%m%d}")
    return normalize_rule(";".join(parts), start, timezone=timezone)


# --- public API: exceptions and occurrences ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Moved:
    """Where a moved occurrence happens instead: its new start, and its new length if any."""

    start: datetime
    duration_minutes: int | None = None

    def __post_init__(self) -> None:
        _check_aware("Moved.start", self.start)
        object.__setattr__(self, "start", _utc(self.start))
        if self.duration_minutes is not None:
            _check_duration(self.duration_minutes)


@dataclass(frozen=True, slots=True, eq=True)
class Exceptions:
    """Changes to single occurrences, each named by its original start (an aware instant).

    Keys are normalised to UTC. An occurrence cannot be both skipped and moved.
    """

    skipped: frozenset[datetime] = frozenset()
    moved: Mapping[datetime, Moved] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        for when in self.skipped:
            _check_aware("a skipped occurrence", when)
        for when in self.moved:
            _check_aware("a moved occurrence", when)
        skipped = frozenset(_utc(when) for when in self.skipped)
        moved = {_utc(when): how for when, how in self.moved.items()}
        if not all(isinstance(how, Moved) for how in moved.values()):
            raise TypeError("moved maps original starts to Moved")
        both = skipped & moved.keys()
        if both:
            raise ValueError(
                f"an occurrence cannot be both skipped and moved: {min(both).isoformat()}"
            )
        object.__setattr__(self, "skipped", skipped)
        object.__setattr__(self, "moved", MappingProxyType(moved))

    def __hash__(self) -> int:
        return hash((self.skipped, frozenset(self.moved.items())))


NO_EXCEPTIONS: Final = Exceptions()


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One meeting of a series, in aware UTC; `index` is its place in the series (from 0)."""

    original_start: datetime
    start: datetime
    end: datetime
    moved: bool
    index: int


def _check_duration(minutes: int) -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise TypeError("duration_minutes must be an int")
    if minutes < 1:
        raise ValueError("duration_minutes must be at least 1")


def occurrences(
    *,
    start: datetime,
    duration_minutes: int,
    rule: str | None,
    timezone: str,
    exceptions: Exceptions = NO_EXCEPTIONS,
    range_from: datetime,
    range_to: datetime,
    limit: int = MAX_OCCURRENCES,
) -> list[Occurrence]:
    """Every occurrence that overlaps [range_from, range_to), by start, at most `limit`.

    An occurrence [s, e) overlaps when s < range_to and e > range_from, so one that runs over
    midnight belongs to both days and one that ends exactly at range_from does not. Moved
    occurrences are listed (and matched) at their new time, skipped ones not at all. Raises
    RecurrenceError for a rule `normalize_rule` would refuse.
    """
    _check_duration(duration_minutes)
    _check_aware("range_from", range_from)
    _check_aware("range_to", range_to)
    if range_to < range_from:
        raise ValueError("range_to lies before range_from")
    if limit < 0:
        raise ValueError("limit must not be negative")
    series = _series(rule, start, _zone(timezone))
    length = timedelta(minutes=duration_minutes)
    low, high = _utc(range_from), _utc(range_to)
    if low == high or limit == 0:
        return []
    if rule is None:
        exceptions = NO_EXCEPTIONS

    found: list[Occurrence] = []
    # an original start s overlaps when range_from - duration < s < range_to
    for index, original in series.window(low - length, high):
        if original in exceptions.skipped or original in exceptions.moved:
            continue
        found.append(Occurrence(original, original, original + length, False, index))
    for original, how in exceptions.moved.items():
        new_length = (
            length if how.duration_minutes is None else timedelta(minutes=how.duration_minutes)
        )
        if not (how.start < high and how.start + new_length > low):
            continue
        position = series.index_of(original)
        if position is not None:
            found.append(Occurrence(original, how.start, how.start + new_length, True, position))
    found.sort(key=lambda o: (o.start, o.original_start))
    return found[:limit]


def occurrence_count(rule: str | None, start: datetime, timezone: str) -> int | None:
    """How many occurrences the rule has (skipped ones included); None if it has no end."""
    return _series(rule, start, _zone(timezone)).count()


def last_end(
    *,
    start: datetime,
    duration_minutes: int,
    rule: str | None,
    timezone: str,
    exceptions: Exceptions = NO_EXCEPTIONS,
) -> datetime | None:
    """When the series' last meeting ends, None if the rule has no end.

    An upper bound for the store's index: no occurrence ends later (a moved one may end later
    than the rule's last, and counts). With `first_start`, a series may overlap a range only
    if first_start < range_to and (last_end is None or last_end > range_from).
    """
    _check_duration(duration_minutes)
    series = _series(rule, start, _zone(timezone))
    last = series.last()
    if last is None:
        return None
    end = last + timedelta(minutes=duration_minutes)
    if rule is None:
        return end
    for original, how in exceptions.moved.items():
        if series.index_of(original) is None:
            continue
        minutes = duration_minutes if how.duration_minutes is None else how.duration_minutes
        end = max(end, how.start + timedelta(minutes=minutes))
    return end


def first_start(
    *,
    start: datetime,
    rule: str | None,
    timezone: str,
    exceptions: Exceptions = NO_EXCEPTIONS,
) -> datetime:
    """The earliest start of any occurrence: the series' start, or a moved one moved earlier."""
    series = _series(rule, start, _zone(timezone))
    earliest = series.start
    if rule is None:
        return earliest
    for original, how in exceptions.moved.items():
        if how.start < earliest and series.index_of(original) is not None:
            earliest = how.start
    return earliest


def is_occurrence(
    *, start: datetime, rule: str | None, timezone: str, original_start: datetime
) -> bool:
    """Whether the series produces an occurrence that starts (originally) at `original_start`."""
    _check_aware("original_start", original_start)
    return _series(rule, start, _zone(timezone)).index_of(_utc(original_start)) is not None
