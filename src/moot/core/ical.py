"""iCalendar (RFC 5545) export of meetings: one meeting's .ics, and a person's calendar feed.

Calendar clients (Outlook, Google, Apple, Thunderbird) are where people actually look at their
meetings, so the export must mean exactly what the Meeting Center means. It is built from
`moot.core.recurrence`, the same rules the Meeting Center lists meetings by:

- the meeting's start is written in its own time zone (DTSTART;TZID=Europe/Berlin) with a
  VTIMEZONE, so a client expands the RRULE in wall-clock time as Moot does and a weekly 09:00
  meeting stays at 09:00 across daylight saving changes;
- skipped occurrences are EXDATEs; each moved one is an extra VEVENT with the same UID and a
  RECURRENCE-ID naming its original start; exceptions for dates the rule does not produce are
  left out, as `recurrence.occurrences` ignores them;
- the output depends only on the meeting (DTSTAMP is its `updated_at`, not the time of the
  request), so an unchanged meeting exports the same bytes, which suits HTTP caching, and
  SEQUENCE tells clients which version is newer;
- text goes through icalendar, which escapes commas, semicolons, backslashes and newlines and
  folds long lines; control characters, which RFC 5545 TEXT cannot hold, are dropped, and line
  breaks become plain newlines;
- ORGANIZER is written only when the moderator is an e-mail address: it must be a calendar
  address, and a made-up one would have clients offer to e-mail nobody. The moderator is always
  named in the DESCRIPTION.

This module takes a plain `CalendarMeeting` and never touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parseaddr
from types import MappingProxyType
from typing import Final, Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vDuration, vRecur, vText

from moot.core import recurrence
from moot.core.recurrence import Exceptions, Moved

__all__ = [
    "DEFAULT_PRODUCT",
    "FEED_REFRESH",
    "CalendarMeeting",
    "MeetingStatus",
    "feed_calendar",
    "meeting_calendar",
]

DEFAULT_PRODUCT: Final = "-//Moot//Meeting Center//EN"
FEED_REFRESH: Final = timedelta(minutes=15)
"""How often a subscribed feed asks to be fetched again (REFRESH-INTERVAL, X-PUBLISHED-TTL)."""

MeetingStatus = Literal["scheduled", "in_progress", "ended", "cancelled"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_EMAIL = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")


@dataclass(frozen=True, kw_only=True)
class CalendarMeeting:
    """What the export needs of a meeting; the store builds one from its row.

    `skipped` and `moved` name occurrences by their original start (aware); `moved` maps one
    to its new start and, if it changed, its new duration in minutes.
    """

    id: str
    name: str
    moderator: str
    start: datetime
    duration_minutes: int
    timezone: str
    url: str
    updated_at: datetime
    rule: str | None = None
    skipped: frozenset[datetime] = frozenset()
    moved: Mapping[datetime, tuple[datetime, int | None]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    status: MeetingStatus = "scheduled"
    sequence: int = 0

    def __post_init__(self) -> None:
        for name in ("start", "updated_at"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"CalendarMeeting.{name} must be an aware datetime")
        if _CONTROL.search(self.url) or "\n" in self.url or "\t" in self.url:
            raise ValueError("CalendarMeeting.url must not contain control characters")
        try:
            ZoneInfo(self.timezone)
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"CalendarMeeting.timezone {self.timezone!r} is not an IANA time zone"
            ) from None
        if self.duration_minutes < 1:
            raise ValueError("CalendarMeeting.duration_minutes must be at least 1")
        if self.sequence < 0:
            raise ValueError("CalendarMeeting.sequence must not be negative")
        object.__setattr__(self, "skipped", frozenset(self.skipped))
        object.__setattr__(self, "moved", MappingProxyType(dict(self.moved)))

    @property
    def exceptions(self) -> Exceptions:
        """The exceptions as `moot.core.recurrence` takes them."""
        return Exceptions(
            skipped=self.skipped,
            moved={
                original: Moved(start=new_start, duration_minutes=minutes)
                for original, (new_start, minutes) in self.moved.items()
            },
        )


def _text(value: str) -> str:
    """Text an iCalendar TEXT value can carry: newlines kept, other control characters not."""
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def _organizer(moderator: str) -> vCalAddress | None:
    display, address = parseaddr(moderator)
    if not _EMAIL.fullmatch(address) or not (address == moderator.strip() or display):
        return None
    organizer = vCalAddress(f"mailto:{address}")
    if display:
        organizer.params["CN"] = _text(display).replace("\n", " ")
    return organizer


def _status(meeting: CalendarMeeting) -> str:
    return "CANCELLED" if meeting.status == "cancelled" else "CONFIRMED"


def _description(meeting: CalendarMeeting) -> str:
    return f"Join the meeting: {meeting.url}\nModerator: {_text(meeting.moderator)}"


def _event(
    meeting: CalendarMeeting,
    zone: ZoneInfo,
    start: datetime,
    minutes: int,
    *,
    recurrence_id: datetime | None = None,
) -> Event:
    event = Event()
    event.add("UID", f"{meeting.id}@moot")
    event.add("DTSTAMP", meeting.updated_at.astimezone(UTC))
    event.add("LAST-MODIFIED", meeting.updated_at.astimezone(UTC))
    event.add("SEQUENCE", meeting.sequence)
    if recurrence_id is not None:
        event.add("RECURRENCE-ID", recurrence_id.astimezone(zone))
    event.add("DTSTART", start.astimezone(zone))
    # DTEND from the exact length, so a meeting across a DST change lasts what it should
    event.add("DTEND", (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(zone))
    event.add("SUMMARY", _text(meeting.name))
    event.add("DESCRIPTION", _description(meeting))
    event.add("LOCATION", meeting.url)
    event.add("URL", meeting.url)
    event.add("STATUS", _status(meeting))
    organizer = _organizer(meeting.moderator)
    if organizer is not None:
        event.add("ORGANIZER", organizer)
    return event


def _events(meeting: CalendarMeeting) -> tuple[list[Event], date, date]:
    """The VEVENTs of one meeting, and the first and last day its time zone must cover."""
    zone = ZoneInfo(meeting.timezone)
    if meeting.rule is None:
        end = meeting.start + timedelta(minutes=meeting.duration_minutes)
        master = _event(meeting, zone, meeting.start, meeting.duration_minutes)
        return [master], meeting.start.astimezone(zone).date(), end.astimezone(zone).date()

    rule = recurrence.normalize_rule(meeting.rule, meeting.start, timezone=meeting.timezone)
    exceptions = meeting.exceptions

    def happens(original: datetime) -> bool:
        return recurrence.is_occurrence(
            start=meeting.start, rule=rule, timezone=meeting.timezone, original_start=original
        )

    master = _event(meeting, zone, meeting.start, meeting.duration_minutes)
    master.add("RRULE", vRecur.from_ical(rule))
    skipped = sorted(when for when in exceptions.skipped if happens(when))
    if skipped:
        master.add("EXDATE", [when.astimezone(zone) for when in skipped])
    events = [master]
    for original in sorted(exceptions.moved):
        if not happens(original):
            continue
        how = exceptions.moved[original]
        minutes = meeting.duration_minutes if how.duration_minutes is None else how.duration_minutes
        events.append(_event(meeting, zone, how.start, minutes, recurrence_id=original))

    first = recurrence.first_start(
        start=meeting.start, rule=rule, timezone=meeting.timezone, exceptions=exceptions
    )
    last = recurrence.last_end(
        start=meeting.start,
        duration_minutes=meeting.duration_minutes,
        rule=rule,
        timezone=meeting.timezone,
        exceptions=exceptions,
    )
    if last is None:  # no end: cover what Moot lists of it
        last = recurrence.series_horizon(meeting.start) + timedelta(
            minutes=meeting.duration_minutes
        )
        for how in exceptions.moved.values():
            last = max(last, how.start + timedelta(days=1))
    return events, first.astimezone(zone).date(), last.astimezone(zone).date()


def _calendar(product: str) -> Calendar:
    calendar = Calendar()
    # vText: at the calendar level icalendar would not escape a str of a property it does not
    # know as TEXT (NAME, X-WR-CALNAME), and a newline would break the line
    calendar.add("PRODID", vText(_text(product)))
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    return calendar


def _finish(calendar: Calendar, events: list[Event], first: date, last: date) -> bytes:
    for event in events:
        calendar.add_component(event)
    # VTIMEZONEs generated from zoneinfo, whole years around everything the events reach
    calendar.add_missing_timezones(
        first_date=date(first.year, 1, 1), last_date=date(last.year + 1, 12, 31)
    )
    return bytes(calendar.to_ical())


def meeting_calendar(meeting: CalendarMeeting, *, product: str = DEFAULT_PRODUCT) -> bytes:
    """One meeting as a calendar to add (METHOD:PUBLISH): its VEVENT and its moved ones.

    Raises RecurrenceError for a rule `moot.core.recurrence` refuses.
    """
    events, first, last = _events(meeting)
    return _finish(_calendar(product), events, first, last)


def feed_calendar(
    meetings: Iterable[CalendarMeeting], *, name: str, product: str = DEFAULT_PRODUCT
) -> bytes:
    """A calendar feed to subscribe to, named `name`, with the events of all `meetings`.

    Clients are asked to fetch it again every FEED_REFRESH (REFRESH-INTERVAL from RFC 7986,
    X-PUBLISHED-TTL for Outlook). Meetings come in order of start, then id, so the same
    meetings give the same bytes.
    """
    calendar = _calendar(product)
    calendar.add("NAME", vText(_text(name)))
    calendar.add("X-WR-CALNAME", vText(_text(name)))
    calendar.add("REFRESH-INTERVAL", vDuration(FEED_REFRESH), parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", vDuration(FEED_REFRESH))
    events: list[Event] = []
    first = last = None
    for meeting in sorted(meetings, key=lambda m: (m.start.astimezone(UTC), m.id)):
        found, low, high = _events(meeting)
        events.extend(found)
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)
    if first is None or last is None:
        return bytes(calendar.to_ical())
    return _finish(calendar, events, first, last)
