"""iCalendar export: what a calendar client reads back is what the Meeting Center lists.

Every .ics is parsed back with `icalendar.Calendar.from_ical`, and its RRULE, EXDATEs and
RECURRENCE-ID overrides are expanded with plain dateutil, the way a client does; that must give
exactly the occurrences `moot.core.recurrence.occurrences` gives. Text a user typed (names with
commas, semicolons, newlines, HTML, an attempt to inject a VEVENT) must come back unchanged.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar

from moot.core.ical import CalendarMeeting, feed_calendar, meeting_calendar
from moot.core.recurrence import RecurrenceError, build_rule, occurrences

B = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")
UPDATED = datetime(2025, 9, 1, 12, 30, tzinfo=UTC)


def berlin(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=B)


def meeting(**changes: Any) -> CalendarMeeting:
    base = CalendarMeeting(
        id="k3x9q2",
        name="Weekly sync",
        moderator="Alice Example <alice@example.com>",
        start=berlin(2025, 10, 6),
        duration_minutes=60,
        timezone="Europe/Berlin",
        url="https://moot.example.com/m/k3x9q2",
        updated_at=UPDATED,
    )
    return replace(base, **changes)


def parse(ics: bytes) -> Calendar:
    return Calendar.from_ical(ics)


def vevents(ics: bytes) -> list[Any]:
    return list(parse(ics).walk("VEVENT"))


def master(ics: bytes) -> Any:
    [event] = [e for e in vevents(ics) if "RECURRENCE-ID" not in e]
    return event


def calendar_name(ics: bytes, prop: str = "X-WR-CALNAME") -> str:
    """The feed's name as a client reads it: a TEXT value, unescaped by RFC 5545 3.3.11.

    (icalendar parses NAME and X-WR-CALNAME back as unknown values, still escaped.)
    """
    value: Any = parse(ics)[prop]
    raw = value.to_ical().decode()
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], raw)


def _dates(prop: Any) -> list[datetime]:
    """The datetimes of an EXDATE property, whether it was written on one line or several."""
    if prop is None:
        return []
    lines = prop if isinstance(prop, list) else [prop]
    return [value.dt for line in lines for value in line.dts]


Expanded = list[tuple[datetime, datetime, datetime]]


def expand(ics: bytes, range_from: datetime, range_to: datetime) -> dict[str, Expanded]:
    """(original start, start, end) in UTC of each UID's occurrences that overlap the range.

    A client's reading: DTSTART/DTEND, RRULE expanded by dateutil from DTSTART in its zone,
    EXDATEs removed, each RECURRENCE-ID replaced by its own VEVENT.
    """
    masters: dict[str, Any] = {}
    overrides: dict[str, dict[datetime, Any]] = defaultdict(dict)
    for event in vevents(ics):
        uid = str(event["UID"])
        if "RECURRENCE-ID" in event:
            overrides[uid][event["RECURRENCE-ID"].dt.astimezone(UTC)] = event
        else:
            assert uid not in masters, "one master VEVENT per UID"
            masters[uid] = event
    found: dict[str, Expanded] = {}
    for uid, event in masters.items():
        dtstart, dtend = event["DTSTART"].dt, event["DTEND"].dt
        length = dtend.astimezone(UTC) - dtstart.astimezone(UTC)
        moved = overrides.get(uid, {})
        # far enough that any override moved into the range is reached
        enough = max([range_to, *moved]) + timedelta(days=1)
        if "RRULE" in event:
            rule = event["RRULE"].to_ical().decode()
            originals = []
            for when in rrulestr(rule, dtstart=dtstart):
                if when.astimezone(UTC) > enough:
                    break
                originals.append(when.astimezone(UTC))
        else:
            originals = [dtstart.astimezone(UTC)]
        excluded = {when.astimezone(UTC) for when in _dates(event.get("EXDATE"))}
        listed = []
        for original in originals:
            if original in excluded:
                continue
            start, end = original, original + length
            if original in moved:
                start = moved[original]["DTSTART"].dt.astimezone(UTC)
                end = moved[original]["DTEND"].dt.astimezone(UTC)
            if start < range_to and end > range_from:
                listed.append((original, start, end))
        found[uid] = sorted(listed, key=lambda o: (o[1], o[0]))
    return found


def listed(m: CalendarMeeting, range_from: datetime, range_to: datetime) -> Expanded:
    return [
        (o.original_start, o.start, o.end)
        for o in occurrences(
            start=m.start,
            duration_minutes=m.duration_minutes,
            rule=m.rule,
            timezone=m.timezone,
            exceptions=m.exceptions,
            range_from=range_from,
            range_to=range_to,
        )
    ]


# --- the structure a client expects ---------------------------------------------------------


def test_a_single_meeting_is_one_published_vevent_in_its_time_zone() -> None:
    ics = meeting_calendar(meeting())
    calendar = parse(ics)
    assert calendar["VERSION"] == "2.0"
    assert str(calendar["PRODID"]) == "-//Moot//Meeting Center//EN"
    assert str(calendar["METHOD"]) == "PUBLISH"
    [event] = vevents(ics)
    assert str(event["UID"]) == "k3x9q2@moot"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event["DTSTART"].dt == berlin(2025, 10, 6)
    assert event["DTEND"].dt == berlin(2025, 10, 6, 10)
    assert event["DTSTAMP"].dt == UPDATED
    assert event["LAST-MODIFIED"].dt == UPDATED
    assert event["SEQUENCE"] == 0
    assert str(event["SUMMARY"]) == "Weekly sync"
    assert str(event["URL"]) == "https://moot.example.com/m/k3x9q2"
    assert "https://moot.example.com/m/k3x9q2" in str(event["DESCRIPTION"])
    assert "Alice Example <alice@example.com>" in str(event["DESCRIPTION"])
    assert str(event["STATUS"]) == "CONFIRMED"
    assert "RRULE" not in event
    assert b"\r\n" in ics and b"\n" not in ics.replace(b"\r\n", b"")


def test_the_time_zone_is_included_and_covers_the_meeting() -> None:
    ics = meeting_calendar(meeting(rule="FREQ=WEEKLY;COUNT=8"))
    calendar = parse(ics)
    [zone] = calendar.walk("VTIMEZONE")
    assert str(zone["TZID"]) == "Europe/Berlin"
    assert calendar.get_missing_tzids() == set()
    # the change back to winter time on 26 October 2025, inside the series, is in it
    onsets = [
        when.dt if hasattr(when, "dt") else when
        for part in zone.walk("STANDARD")
        for when in [part["DTSTART"], *_dates(part.get("RDATE"))]
    ]
    assert datetime(2025, 10, 26, 3) in onsets
    assert ics.index(b"BEGIN:VTIMEZONE") < ics.index(b"BEGIN:VEVENT")


def test_a_utc_meeting_needs_no_vtimezone() -> None:
    ics = meeting_calendar(meeting(timezone="UTC", start=datetime(2025, 10, 6, 9, tzinfo=UTC)))
    assert b"DTSTART:20251006T090000Z" in ics
    assert b"VTIMEZONE" not in ics


def test_the_organizer_is_the_moderator_when_that_is_an_address() -> None:
    event = master(meeting_calendar(meeting()))
    assert str(event["ORGANIZER"]) == "mailto:alice@example.com"
    assert event["ORGANIZER"].params["CN"] == "Alice Example"
    plain = master(meeting_calendar(meeting(moderator="bob@example.com")))
    assert str(plain["ORGANIZER"]) == "mailto:bob@example.com"
    # a plain name is no calendar address: named in the description only
    named = master(meeting_calendar(meeting(moderator="Anonymous")))
    assert "ORGANIZER" not in named
    assert "Moderator: Anonymous" in str(named["DESCRIPTION"])


def test_a_series_has_its_rrule_exdates_and_moved_occurrences() -> None:
    m = meeting(
        rule="RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20251130",
        skipped=frozenset({berlin(2025, 10, 8), berlin(2025, 10, 27)}),
        moved={berlin(2025, 10, 13): (berlin(2025, 10, 14, 15), 30)},
        sequence=3,
    )
    ics = meeting_calendar(m)
    events = vevents(ics)
    assert len(events) == 2
    main = master(ics)
    assert main["RRULE"].to_ical() == b"FREQ=WEEKLY;UNTIL=20251130T225959Z;BYDAY=MO,WE"
    assert sorted(_dates(main.get("EXDATE"))) == [berlin(2025, 10, 8), berlin(2025, 10, 27)]
    assert b"EXDATE;TZID=Europe/Berlin:" in ics
    [override] = [e for e in events if "RECURRENCE-ID" in e]
    assert str(override["UID"]) == "k3x9q2@moot"
    assert override["RECURRENCE-ID"].dt == berlin(2025, 10, 13)
    assert override["RECURRENCE-ID"].params["TZID"] == "Europe/Berlin"
    assert override["DTSTART"].dt == berlin(2025, 10, 14, 15)
    assert override["DTEND"].dt == berlin(2025, 10, 14, 15, 30)
    assert override["SEQUENCE"] == 3 and main["SEQUENCE"] == 3


def test_exceptions_for_dates_the_rule_does_not_have_are_left_out() -> None:
    m = meeting(
        rule="FREQ=WEEKLY;COUNT=4",
        skipped=frozenset({berlin(2025, 10, 7)}),  # a Tuesday
        moved={berlin(2025, 12, 1): (berlin(2025, 12, 2), None)},  # after the fourth
    )
    ics = meeting_calendar(m)
    assert b"EXDATE" not in ics
    assert b"RECURRENCE-ID" not in ics


def test_a_cancelled_meeting_says_so() -> None:
    event = master(meeting_calendar(meeting(status="cancelled", sequence=4)))
    assert str(event["STATUS"]) == "CANCELLED"
    assert event["SEQUENCE"] == 4


def test_the_same_meeting_gives_the_same_bytes() -> None:
    m = meeting(
        rule="FREQ=DAILY;COUNT=3", moved={berlin(2025, 10, 7): (berlin(2025, 10, 7, 11), None)}
    )
    assert meeting_calendar(m) == meeting_calendar(m)
    assert meeting_calendar(m) != meeting_calendar(replace(m, sequence=1))


def test_a_bad_rule_is_refused() -> None:
    with pytest.raises(RecurrenceError, match="needs FREQ"):
        meeting_calendar(meeting(rule="FREQ=HOURLY"))
    with pytest.raises(ValueError, match="aware"):
        meeting(start=datetime(2025, 10, 6, 9))
    with pytest.raises(ValueError, match="IANA"):
        meeting(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="control characters"):
        meeting(url="https://x.example/m/1\r\nX-EVIL:1")


# --- what a client expands is what Moot lists -------------------------------------------------


CASES = {
    "weekly Mon+Wed across the end of DST, skips and moves": meeting(
        rule="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=12",
        skipped=frozenset({berlin(2025, 10, 22)}),
        moved={
            berlin(2025, 10, 27): (berlin(2025, 10, 28, 16), 45),
            berlin(2025, 11, 5): (berlin(2025, 11, 17, 8), None),  # into another week
        },
    ),
    "monthly on the 31st": meeting(
        start=berlin(2025, 1, 31),
        rule=build_rule("monthly", count=8, start=berlin(2025, 1, 31)),
    ),
    "daily in New York, without end": meeting(
        start=datetime(2025, 10, 30, 8, 30, tzinfo=NY),
        timezone="America/New_York",
        rule="FREQ=DAILY",
        skipped=frozenset({datetime(2025, 11, 2, 8, 30, tzinfo=NY)}),
        moved={
            datetime(2025, 11, 4, 8, 30, tzinfo=NY): (datetime(2025, 11, 3, 22, 0, tzinfo=NY), 120)
        },
    ),
    "23:30 for 90 minutes, every other day": meeting(
        start=berlin(2025, 3, 27, 23, 30),
        duration_minutes=90,
        rule="FREQ=DAILY;INTERVAL=2;COUNT=10",
    ),
    "every other week, week starting Sunday, Auckland": meeting(
        start=datetime(2025, 3, 30, 10, tzinfo=ZoneInfo("Pacific/Auckland")),
        timezone="Pacific/Auckland",
        rule="FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,TU;WKST=SU;UNTIL=20250601",
    ),
    "last working day of the month": meeting(
        start=berlin(2025, 10, 31, 16),
        rule="FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=6",
    ),
    "UTC, weekly until a date": meeting(
        start=datetime(2025, 10, 6, 9, tzinfo=UTC),
        timezone="UTC",
        rule="FREQ=WEEKLY;UNTIL=20251201",
    ),
    "a single meeting": meeting(start=berlin(2025, 10, 26, 1, 30), duration_minutes=150),
}

RANGES = [
    (datetime(2024, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),  # everything listed
    (datetime(2025, 10, 27, tzinfo=UTC), datetime(2025, 11, 3, tzinfo=UTC)),  # one week
    (berlin(2025, 10, 28, 0), berlin(2025, 10, 29, 0)),  # one day in Berlin
    (datetime(2025, 11, 3, 5, tzinfo=UTC), datetime(2025, 11, 4, 5, tzinfo=UTC)),
    (berlin(2025, 3, 28, 0), berlin(2025, 3, 29, 0)),  # the morning after a 23:30 meeting
    (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),  # a month, later
]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("window", range(len(RANGES)))
def test_a_client_expands_the_ics_to_exactly_the_listed_occurrences(case: str, window: int) -> None:
    m = CASES[case]
    range_from, range_to = RANGES[window]
    expanded = expand(meeting_calendar(m), range_from, range_to)
    assert expanded == {"k3x9q2@moot": listed(m, range_from, range_to)}


def test_the_comparison_is_not_vacuous() -> None:
    every = RANGES[0]
    counts = {case: len(listed(m, *every)) for case, m in CASES.items()}
    assert counts["weekly Mon+Wed across the end of DST, skips and moves"] == 11
    assert counts["monthly on the 31st"] == 8
    assert counts["a single meeting"] == 1
    moved = listed(CASES["weekly Mon+Wed across the end of DST, skips and moves"], *RANGES[1])
    assert (berlin(2025, 10, 27), berlin(2025, 10, 28, 16), berlin(2025, 10, 28, 16, 45)) in moved


def test_a_feed_expands_to_every_meeting_s_occurrences() -> None:
    meetings = [replace(m, id=f"m{i}") for i, m in enumerate(CASES.values())]
    ics = feed_calendar(meetings, name="Alice's meetings")
    for range_from, range_to in RANGES:
        expected = {f"{m.id}@moot": listed(m, range_from, range_to) for m in meetings}
        assert expand(ics, range_from, range_to) == expected
    zones = {str(z["TZID"]) for z in parse(ics).walk("VTIMEZONE")}
    assert zones == {"Europe/Berlin", "America/New_York", "Pacific/Auckland"}
    assert parse(ics).get_missing_tzids() == set()


# --- the feed -----------------------------------------------------------------------------------


def test_a_feed_names_itself_and_asks_to_be_refreshed() -> None:
    ics = feed_calendar([meeting()], name="Alice's meetings")
    calendar = parse(ics)
    assert calendar_name(ics) == "Alice's meetings"
    assert calendar_name(ics, "NAME") == "Alice's meetings"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT15M\r\n" in ics
    assert b"X-PUBLISHED-TTL:PT15M\r\n" in ics
    refresh: Any = calendar["REFRESH-INTERVAL"]
    assert refresh.dt == timedelta(minutes=15)
    assert str(calendar["METHOD"]) == "PUBLISH"


def test_an_empty_feed_is_a_valid_calendar() -> None:
    calendar = parse(feed_calendar([], name="Nothing yet"))
    assert calendar.walk("VEVENT") == []
    assert calendar_name(feed_calendar([], name="Nothing yet")) == "Nothing yet"


def test_a_feed_is_in_a_stable_order() -> None:
    a = meeting(id="a", start=berlin(2025, 10, 7))
    b = meeting(id="b", start=berlin(2025, 10, 6))
    c = meeting(id="c", start=berlin(2025, 10, 6))
    ics = feed_calendar([a, c, b], name="x")
    assert ics == feed_calendar([b, a, c], name="x")
    assert [str(e["UID"]) for e in vevents(ics)] == ["b@moot", "c@moot", "a@moot"]


# --- escaping -------------------------------------------------------------------------------------


HOSTILE = [
    "Q4 review, budget; plans",
    "back\\slash and a literal \\n and \\, too",
    "Line one\nLine two\n\nLine four",
    '<script>alert("x")</script> & <b>bold</b> &amp; <a href="x">',
    "END:VEVENT\nBEGIN:VEVENT\nUID:evil@moot\nSUMMARY:injected",
    "quotes \"double\" and 'single', colon: here; DTSTART:19700101T000000Z",
    "Ünïcødé 会议 🎉 Привет " * 12,  # long and multibyte: folded inside characters?
    "tab\there",
    " leading and trailing spaces ",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_round_trips_exactly(name: str) -> None:
    m = meeting(
        name=name,
        moderator=name,
        rule="FREQ=WEEKLY;COUNT=2",
        moved={berlin(2025, 10, 13): (berlin(2025, 10, 14), None)},
    )
    ics = meeting_calendar(m)
    events = vevents(ics)
    assert len(events) == 2  # nothing injected
    assert ics.split(b"\r\n").count(b"BEGIN:VEVENT") == 2
    for event in events:
        assert str(event["SUMMARY"]) == name
        assert str(event["DESCRIPTION"]).endswith(f"Moderator: {name}")
        assert str(event["UID"]) == "k3x9q2@moot"
    # every content line is folded to at most 75 octets
    for line in ics.split(b"\r\n"):
        assert len(line) <= 75, line
    feed = feed_calendar([m], name=name)
    assert calendar_name(feed) == name


def test_special_characters_are_escaped_on_the_wire() -> None:
    ics = meeting_calendar(meeting(name="a,b;c\\d\ne"))
    assert b"SUMMARY:a\\,b\\;c\\\\d\\ne\r\n" in ics


def test_line_breaks_become_newlines_and_control_characters_are_dropped() -> None:
    m = meeting(name="one\r\ntwo\rthree\x00\x07\x1b[31m four\x7f")
    assert str(master(meeting_calendar(m))["SUMMARY"]) == "one\ntwo\nthree[31m four"


def test_a_hostile_moderator_address_is_quoted_in_cn() -> None:
    moderator = '"Eve \\"the\\" Hacker; ROLE=CHAIR:" <eve@example.com>'
    event = master(meeting_calendar(meeting(moderator=moderator)))
    assert str(event["ORGANIZER"]) == "mailto:eve@example.com"
    assert event["ORGANIZER"].params["CN"] == 'Eve "the" Hacker; ROLE=CHAIR:'
    assert "ROLE" not in event["ORGANIZER"].params


def test_dates_used_above_are_what_they_claim() -> None:
    # guards for the cases: the 6th of October 2025 is a Monday, the 26th the DST change
    assert date(2025, 10, 6).weekday() == 0
    assert berlin(2025, 10, 27).utcoffset() == timedelta(hours=1)
    assert berlin(2025, 10, 20).utcoffset() == timedelta(hours=2)
