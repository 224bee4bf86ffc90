"""Recurring meetings: what a user sees listed, checked by example and against plain dateutil.

Examples pin what people notice (the weekly 09:00 meeting stays at 09:00 when the clocks
change, a meeting over midnight is on both days, a skipped one is gone, a moved one is only at
its new time, a bad rule says what to fix). A hypothesis property then checks `occurrences` on
random rules, zones, ranges and exceptions against a reference built directly on dateutil's
`rrulestr` with an aware DTSTART, the way any RFC 5545 client reads the exported rule.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st

from moot.core import recurrence
from moot.core.recurrence import (
    HORIZON_YEARS,
    MAX_OCCURRENCES,
    Exceptions,
    Moved,
    Occurrence,
    RecurrenceError,
    build_rule,
    first_start,
    is_occurrence,
    last_end,
    normalize_rule,
    occurrence_count,
    occurrences,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
B = ZoneInfo(BERLIN)
NY = ZoneInfo(NEW_YORK)


def berlin(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=B)


def utc(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=UTC)


def listed(
    start: datetime,
    rule: str | None,
    range_from: datetime,
    range_to: datetime,
    *,
    timezone: str = BERLIN,
    duration_minutes: int = 60,
    exceptions: Exceptions | None = None,
    limit: int = MAX_OCCURRENCES,
) -> list[Occurrence]:
    return occurrences(
        start=start,
        duration_minutes=duration_minutes,
        rule=rule,
        timezone=timezone,
        exceptions=exceptions or Exceptions(),
        range_from=range_from,
        range_to=range_to,
        limit=limit,
    )


def local_starts(found: list[Occurrence], zone: ZoneInfo = B) -> list[datetime]:
    """Starts as naive wall-clock times in `zone`: what the user reads on the page."""
    return [o.start.astimezone(zone).replace(tzinfo=None) for o in found]


def day_range(day: date, zone: ZoneInfo = B) -> tuple[datetime, datetime]:
    """One local calendar day as an aware [from, to) range."""
    low = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    high = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return low, high


EVERYTHING = (utc(1990, 1, 1), utc(2090, 1, 1))


# --- normalize_rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("FREQ=DAILY", "FREQ=DAILY"),
        ("RRULE:FREQ=DAILY;COUNT=5", "FREQ=DAILY;COUNT=5"),
        ("rrule:freq=weekly;byday=we,mo", "FREQ=WEEKLY;BYDAY=MO,WE"),
        (" FREQ=WEEKLY ; INTERVAL=1 ; BYDAY=MO ; WKST=MO ; ", "FREQ=WEEKLY;BYDAY=MO"),
        ("FREQ=WEEKLY;WKST=SU;INTERVAL=2;BYDAY=MO", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;WKST=SU"),
        ("COUNT=3;BYMONTHDAY=-1,6,1;FREQ=MONTHLY", "FREQ=MONTHLY;BYMONTHDAY=1,6,-1;COUNT=3"),
        ("FREQ=MONTHLY;BYDAY=+1MO", "FREQ=MONTHLY;BYDAY=+1MO"),
        ("FREQ=YEARLY;BYMONTH=10,1;BYMONTHDAY=6", "FREQ=YEARLY;BYMONTH=1,10;BYMONTHDAY=6"),
    ],
)
def test_normalize_rule_gives_the_canonical_form(text: str, canonical: str) -> None:
    # Monday 6 January 2025, 09:00 in Berlin: the first of every one of these rules
    start = berlin(2025, 1, 6)
    assert normalize_rule(text, start, timezone=BERLIN) == canonical
    assert normalize_rule(canonical, start, timezone=BERLIN) == canonical  # idempotent


def test_until_comes_out_in_utc() -> None:
    winter, summer = berlin(2025, 1, 6), berlin(2025, 6, 2)
    # a date: every meeting that starts on that day in Berlin, i.e. up to 23:59:59 there
    assert normalize_rule("FREQ=WEEKLY;UNTIL=20250203", winter, timezone=BERLIN) == (
        "FREQ=WEEKLY;UNTIL=20250203T225959Z"
    )
    assert normalize_rule("FREQ=WEEKLY;UNTIL=20250630", summer, timezone=BERLIN) == (
        "FREQ=WEEKLY;UNTIL=20250630T215959Z"
    )
    # a floating time is Berlin time; a UTC time stays as it is
    assert normalize_rule("FREQ=WEEKLY;UNTIL=20250203T090000", winter, timezone=BERLIN) == (
        "FREQ=WEEKLY;UNTIL=20250203T080000Z"
    )
    assert normalize_rule("FREQ=WEEKLY;UNTIL=20250203T080000Z", winter, timezone=BERLIN) == (
        "FREQ=WEEKLY;UNTIL=20250203T080000Z"
    )


def test_the_zone_defaults_to_the_start_s_own() -> None:
    assert normalize_rule("FREQ=DAILY;UNTIL=20250110", berlin(2025, 1, 6)) == (
        "FREQ=DAILY;UNTIL=20250110T225959Z"
    )


START = berlin(2025, 1, 6)  # a Monday


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the repeat rule is empty"),
        ("RRULE:", "the repeat rule is empty"),
        ("FREQ=HOURLY", "the repeat rule needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY"),
        ("FREQ=SECONDLY", "the repeat rule needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY"),
        ("BYDAY=MO", "the repeat rule needs FREQ=DAILY, WEEKLY, MONTHLY or YEARLY"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20250301", "may not have both COUNT and UNTIL"),
        ("FREQ=DAILY;COUNT=1001", "at most 1000 occurrences"),
        ("FREQ=DAILY;COUNT=0", "COUNT must be a whole number from 1 to 1000"),
        ("FREQ=DAILY;COUNT=many", "COUNT must be a whole number"),
        ("FREQ=DAILY;UNTIL=20300101", "at most 1000 occurrences"),
        ("FREQ=WEEKLY;UNTIL=20241231", "UNTIL lies before the start"),
        ("FREQ=WEEKLY;UNTIL=20250106T075959Z", "UNTIL lies before the start"),
        ("FREQ=YEARLY;UNTIL=20600106", f"more than {HORIZON_YEARS} years after the start"),
        ("FREQ=YEARLY;COUNT=30", f"more than {HORIZON_YEARS} years past the start"),
        ("FREQ=WEEKLY;UNTIL=2025-02-01", "UNTIL=2025-02-01 is not a date like 20261231"),
        ("FREQ=WEEKLY;UNTIL=20250230", "is not a date like 20261231"),
        ("FREQ=DAILY;BYHOUR=9", "BYHOUR is not supported"),
        ("FREQ=DAILY;BYWEEKNO=3", "BYWEEKNO is not supported"),
        ("FREQ=DAILY;X-NAME=1", "X-NAME is not supported"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ appears twice"),
        ("FREQ=DAILY;COUNT", "is not NAME=VALUE"),
        ("FREQ=WEEKLY;BYDAY=MONDAY", "BYDAY value 'MONDAY' is not a weekday"),
        ("FREQ=WEEKLY;BYDAY=1MO", "only works with FREQ=MONTHLY or YEARLY"),
        ("FREQ=MONTHLY;BYDAY=6MO", "the n-th weekday must be from 1 to 5"),
        ("FREQ=WEEKLY;BYMONTHDAY=6", "BYMONTHDAY does not go with FREQ=WEEKLY"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY values must be days of the month"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY values must be days of the month"),
        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH values must be months from 1 to 12"),
        ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS needs BYDAY, BYMONTHDAY or BYMONTH"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number from 1 to 999"),
        ("FREQ=DAILY;INTERVAL=1000", "INTERVAL must be a whole number from 1 to 999"),
        ("FREQ=WEEKLY;WKST=XX", "WKST=XX is not a weekday"),
        ("DTSTART:20250106T090000\nRRULE:FREQ=DAILY", "give only the repeat rule itself"),
        ("FREQ=DAILY\nEXDATE:20250107T090000", "give only the repeat rule itself"),
        # the start must be the first occurrence: Monday is not a Tuesday
        ("FREQ=WEEKLY;BYDAY=TU", "is not on a day the repeat rule FREQ=WEEKLY;BYDAY=TU"),
        ("FREQ=MONTHLY;BYMONTHDAY=15", "its first would be Wednesday 15 January 2025, 09:00"),
        # rules that never produce a date at all
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "falls on no date"),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "falls on no date"),
        ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2", "falls on no date"),
    ],
)
def test_bad_rules_say_what_to_change(text: str, message: str) -> None:
    with pytest.raises(RecurrenceError, match=re.escape(message)):
        normalize_rule(text, START, timezone=BERLIN)


def test_recurrence_errors_are_value_errors() -> None:
    assert issubclass(RecurrenceError, ValueError)


def test_a_rule_that_never_matches_is_refused_within_the_horizon() -> None:
    # dateutil alone scans every day up to the year 9999 for these (seconds of CPU): the
    # search stops at the series' horizon, and the refusal says so. (No wall-clock bound
    # here: the suite runs on loaded machines.)
    for text in ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31"):
        with pytest.raises(RecurrenceError, match=f"falls on no date within {HORIZON_YEARS} years"):
            normalize_rule(text, berlin(2025, 1, 1), timezone=BERLIN)


def test_unknown_zone_and_naive_start() -> None:
    with pytest.raises(RecurrenceError, match="unknown time zone 'Mars/Olympus'"):
        normalize_rule("FREQ=DAILY", START, timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        normalize_rule("FREQ=DAILY", datetime(2025, 1, 6, 9))
    with pytest.raises(RecurrenceError, match="unknown time zone"):
        listed(START, "FREQ=DAILY", *EVERYTHING, timezone="Not/AZone")


def test_occurrences_refuse_what_normalize_refuses() -> None:
    with pytest.raises(RecurrenceError, match="needs FREQ"):
        listed(START, "FREQ=MINUTELY", *EVERYTHING)
    with pytest.raises(RecurrenceError, match="is not on a day"):
        listed(START, "FREQ=WEEKLY;BYDAY=FR", *EVERYTHING)


# --- build_rule: the form's "Repeat" controls ------------------------------------------------


def test_daily_every_other_day_for_five() -> None:
    rule = build_rule("daily", interval=2, count=5, start=START, timezone=BERLIN)
    assert rule == "FREQ=DAILY;INTERVAL=2;COUNT=5"
    assert local_starts(listed(START, rule, *EVERYTHING)) == [
        datetime(2025, 1, d, 9) for d in (6, 8, 10, 12, 14)
    ]


def test_weekly_on_monday_and_wednesday_until_a_date() -> None:
    rule = build_rule("weekly", weekdays=[2, 0], until=date(2025, 1, 22), start=START)
    assert rule == "FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20250122T225959Z"
    assert local_starts(listed(START, rule, *EVERYTHING)) == [
        datetime(2025, 1, d, 9) for d in (6, 8, 13, 15, 20, 22)
    ]
    assert occurrence_count(rule, START, BERLIN) == 6


def test_weekly_until_includes_a_late_meeting_on_the_last_day() -> None:
    late = berlin(2025, 1, 6, 23, 30)  # 22:30 UTC: still Monday in Berlin
    rule = build_rule("weekly", until=date(2025, 1, 20), start=late, timezone=BERLIN)
    assert local_starts(listed(late, rule, *EVERYTHING)) == [
        datetime(2025, 1, d, 23, 30) for d in (6, 13, 20)
    ]


def test_until_is_a_day_in_the_meeting_s_zone_not_in_utc() -> None:
    # 08:00 in Auckland is 19:00 UTC the evening before
    auckland = ZoneInfo("Pacific/Auckland")
    start = datetime(2025, 3, 3, 8, tzinfo=auckland)
    rule = build_rule("daily", until=date(2025, 3, 5), start=start, timezone="Pacific/Auckland")
    found = listed(start, rule, *EVERYTHING, timezone="Pacific/Auckland")
    assert local_starts(found, auckland) == [datetime(2025, 3, d, 8) for d in (3, 4, 5)]
    assert [o.start.day for o in found] == [2, 3, 4]  # the UTC dates


def test_weekly_defaults_to_the_start_s_weekday() -> None:
    assert build_rule("weekly", start=START, timezone=BERLIN) == "FREQ=WEEKLY;BYDAY=MO"
    # the day is the one in the meeting's zone: Monday 00:30 Berlin is Sunday in UTC
    early = berlin(2025, 1, 6, 0, 30)
    assert build_rule("weekly", start=early.astimezone(UTC), timezone=BERLIN) == (
        "FREQ=WEEKLY;BYDAY=MO"
    )


def test_monthly_on_the_start_s_day() -> None:
    start = berlin(2025, 1, 15)
    rule = build_rule("monthly", count=4, start=start)
    assert rule == "FREQ=MONTHLY;BYMONTHDAY=15;COUNT=4"
    assert local_starts(listed(start, rule, *EVERYTHING)) == [
        datetime(2025, m, 15, 9) for m in (1, 2, 3, 4)
    ]


def test_monthly_on_the_31st_falls_on_the_last_day_of_shorter_months() -> None:
    start = berlin(2025, 1, 31)
    rule = build_rule("monthly", count=5, start=start)
    assert local_starts(listed(start, rule, *EVERYTHING)) == [
        datetime(2025, 1, 31, 9),
        datetime(2025, 2, 28, 9),
        datetime(2025, 3, 31, 9),
        datetime(2025, 4, 30, 9),
        datetime(2025, 5, 31, 9),
    ]


def test_monthly_on_the_30th_keeps_the_30th_and_takes_february_s_last() -> None:
    start = berlin(2024, 1, 30)
    rule = build_rule("monthly", interval=1, until=date(2024, 4, 30), start=start)
    assert local_starts(listed(start, rule, *EVERYTHING)) == [
        datetime(2024, 1, 30, 9),
        datetime(2024, 2, 29, 9),  # a leap year
        datetime(2024, 3, 30, 9),
        datetime(2024, 4, 30, 9),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"freq": "weekly", "weekdays": [1, 3]}, "the first meeting is on a Monday"),
        ({"freq": "weekly", "weekdays": [7]}, "weekdays are numbers from 0"),
        ({"freq": "daily", "weekdays": [0]}, "only be chosen for a weekly repeat"),
        ({"freq": "daily", "interval": 0}, "repeat every 1 to 999 days"),
        ({"freq": "monthly", "interval": 1000}, "repeat every 1 to 999 months"),
        ({"freq": "daily", "count": 2000}, "at most 1000 occurrences"),
        ({"freq": "daily", "count": 3, "until": date(2025, 2, 1)}, "not have both COUNT and"),
        ({"freq": "daily", "until": date(2025, 1, 5)}, "UNTIL lies before the start"),
        ({"freq": "daily", "until": date(2030, 1, 5)}, "at most 1000 occurrences"),
        ({"freq": "yearly"}, "repeat daily, weekly or monthly"),
    ],
)
def test_build_rule_refuses_what_the_form_must_not_send(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(RecurrenceError, match=message):
        build_rule(start=START, timezone=BERLIN, **kwargs)  # type: ignore[arg-type]


# --- occurrences: what is listed when -------------------------------------------------------


def test_a_single_meeting_has_exactly_one_occurrence() -> None:
    start = berlin(2025, 3, 10, 14)
    assert listed(start, None, *EVERYTHING) == [
        Occurrence(start.astimezone(UTC), start, start + timedelta(hours=1), False, 0)
    ]
    assert occurrence_count(None, start, BERLIN) == 1
    assert last_end(start=start, duration_minutes=90, rule=None, timezone=BERLIN) == (
        start + timedelta(minutes=90)
    )


def test_a_range_lists_what_overlaps_it() -> None:
    start = berlin(2025, 3, 10, 14)  # 14:00-15:00
    assert listed(start, None, berlin(2025, 3, 10, 10), start) == []  # ends as it begins
    assert listed(start, None, start + timedelta(hours=1), berlin(2025, 3, 11)) == []
    assert len(listed(start, None, berlin(2025, 3, 10, 14, 59), berlin(2025, 3, 10, 20))) == 1
    assert len(listed(start, None, berlin(2025, 3, 10, 14, 20), berlin(2025, 3, 10, 14, 40))) == 1
    assert len(listed(start, None, berlin(2025, 3, 10, 10), berlin(2025, 3, 10, 14, 1))) == 1
    assert listed(start, None, start, start) == []  # an empty range


def test_a_meeting_over_midnight_is_on_both_days() -> None:
    start = berlin(2025, 3, 10, 23, 30)  # 23:30 to 00:30
    for day in (date(2025, 3, 10), date(2025, 3, 11)):
        assert len(listed(start, None, *day_range(day))) == 1, day
    assert listed(start, None, *day_range(date(2025, 3, 12))) == []
    # and every night of a daily one is on two days, one of them from the night before
    rule = "FREQ=DAILY;COUNT=3"
    found = listed(start, rule, *day_range(date(2025, 3, 11)))
    assert [o.index for o in found] == [0, 1]


def test_weekly_berlin_meeting_keeps_9_local_when_dst_ends() -> None:
    # summer time ends in Berlin on Sunday 26 October 2025
    start = berlin(2025, 10, 13)
    found = listed(start, "FREQ=WEEKLY;COUNT=4", *EVERYTHING)
    assert local_starts(found) == [
        datetime(2025, m, d, 9) for m, d in ((10, 13), (10, 20), (10, 27), (11, 3))
    ]
    assert [o.start for o in found] == [
        utc(2025, 10, 13, 7),
        utc(2025, 10, 20, 7),
        utc(2025, 10, 27, 8),  # one hour later in UTC
        utc(2025, 11, 3, 8),
    ]
    assert all(o.end - o.start == timedelta(hours=1) for o in found)


def test_weekly_meeting_keeps_its_local_time_when_dst_begins() -> None:
    start = berlin(2025, 3, 24, 9)
    found = listed(start, "FREQ=WEEKLY;COUNT=2", *EVERYTHING)
    assert [o.start for o in found] == [utc(2025, 3, 24, 8), utc(2025, 3, 31, 7)]


def test_new_york_meeting_follows_new_york_s_dst_not_europe_s() -> None:
    # Europe moved back on 26 October 2025, New York on 2 November
    start = datetime(2025, 10, 21, 10, tzinfo=NY)
    found = listed(start, "FREQ=WEEKLY;COUNT=3", *EVERYTHING, timezone=NEW_YORK)
    assert [o.start for o in found] == [
        utc(2025, 10, 21, 14),
        utc(2025, 10, 28, 14),
        utc(2025, 11, 4, 15),
    ]


def test_a_time_skipped_by_dst_happens_an_hour_later() -> None:
    # 02:30 does not exist in Berlin on 30 March 2025: read with the offset before the gap
    start = berlin(2025, 3, 29, 2, 30)
    found = listed(start, "FREQ=DAILY;COUNT=3", *EVERYTHING)
    assert [o.start for o in found] == [
        utc(2025, 3, 29, 1, 30),
        utc(2025, 3, 30, 1, 30),  # 03:30 summer time
        utc(2025, 3, 31, 0, 30),
    ]


def test_a_time_repeated_by_dst_takes_the_first_and_a_start_in_the_second_stays() -> None:
    start = berlin(2025, 10, 25, 2, 30)
    found = listed(start, "FREQ=DAILY;COUNT=2", *EVERYTHING)
    assert [o.start for o in found] == [utc(2025, 10, 25, 0, 30), utc(2025, 10, 26, 0, 30)]
    # a meeting that starts in the repeated hour itself starts then
    second = datetime(2025, 10, 26, 2, 30, fold=1, tzinfo=B)
    assert second.astimezone(UTC) == utc(2025, 10, 26, 1, 30)
    found = listed(second, "FREQ=WEEKLY;COUNT=2", *EVERYTHING)
    assert [o.start for o in found] == [utc(2025, 10, 26, 1, 30), utc(2025, 11, 2, 1, 30)]


def test_seconds_and_microseconds_of_the_start_are_kept() -> None:
    start = berlin(2025, 1, 6).replace(second=5, microsecond=123456)
    found = listed(start, "FREQ=DAILY;COUNT=2", *EVERYTHING)
    assert [o.start.astimezone(B).time().isoformat() for o in found] == ["09:00:05.123456"] * 2


@pytest.mark.parametrize(
    ("start", "rule", "expected"),
    [
        # RFC 5545 section 3.8.5.3's own examples, in America/New_York
        (
            datetime(1997, 9, 5, 9, tzinfo=NY),
            "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
            [
                *[(1997, 9, 5), (1997, 10, 3), (1997, 11, 7), (1997, 12, 5), (1998, 1, 2)],
                *[(1998, 2, 6), (1998, 3, 6), (1998, 4, 3), (1998, 5, 1), (1998, 6, 5)],
            ],
        ),
        (
            datetime(1997, 9, 1, 9, tzinfo=NY),
            "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
            [(1997, 9, d) for d in (1, 3, 5, 15, 17, 19, 29)]
            + [(1997, 10, d) for d in (1, 3, 13, 15, 17, 27, 29, 31)]
            + [(1997, 11, d) for d in (10, 12, 14, 24, 26, 28)]
            + [(1997, 12, d) for d in (8, 10, 12, 22)],
        ),
        (
            datetime(1997, 9, 30, 9, tzinfo=NY),
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3",
            [(1997, 9, 30), (1997, 10, 31), (1997, 11, 28)],
        ),
        (
            datetime(1997, 8, 5, 9, tzinfo=NY),
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
            [(1997, 8, 5), (1997, 8, 10), (1997, 8, 19), (1997, 8, 24)],
        ),
        (
            datetime(1997, 8, 5, 9, tzinfo=NY),
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
            [(1997, 8, 5), (1997, 8, 17), (1997, 8, 19), (1997, 8, 31)],
        ),
        (
            datetime(1997, 9, 2, 9, tzinfo=NY),
            "FREQ=DAILY;INTERVAL=10;COUNT=5",
            [(1997, 9, 2), (1997, 9, 12), (1997, 9, 22), (1997, 10, 2), (1997, 10, 12)],
        ),
        (
            datetime(1998, 2, 27, 9, tzinfo=NY),  # last Friday of the month
            "FREQ=MONTHLY;BYDAY=-1FR;COUNT=3",
            [(1998, 2, 27), (1998, 3, 27), (1998, 4, 24)],
        ),
        (
            datetime(1997, 6, 10, 9, tzinfo=NY),
            "FREQ=YEARLY;COUNT=4;BYMONTH=6,7",
            [(1997, 6, 10), (1997, 7, 10), (1998, 6, 10), (1998, 7, 10)],
        ),
    ],
)
def test_rfc_5545_examples(
    start: datetime, rule: str, expected: list[tuple[int, int, int]]
) -> None:
    found = listed(start, rule, *EVERYTHING, timezone=NEW_YORK)
    assert local_starts(found, NY) == [datetime(*day, 9) for day in expected]
    assert [o.index for o in found] == list(range(len(expected)))


def test_a_range_lists_only_its_part_of_the_series_with_series_indexes() -> None:
    start = berlin(2025, 1, 6)
    found = listed(start, "FREQ=WEEKLY;BYDAY=MO,WE", berlin(2025, 2, 1), berlin(2025, 2, 8))
    assert local_starts(found) == [datetime(2025, 2, 3, 9), datetime(2025, 2, 5, 9)]
    assert [o.index for o in found] == [8, 9]


def test_count_and_last_end() -> None:
    start = berlin(2025, 1, 6)
    rule = "FREQ=WEEKLY;COUNT=10"
    assert occurrence_count(rule, start, BERLIN) == 10
    assert last_end(start=start, duration_minutes=45, rule=rule, timezone=BERLIN) == (
        berlin(2025, 3, 10, 9, 45)
    )
    until = "FREQ=DAILY;UNTIL=20250110"
    assert occurrence_count(until, start, BERLIN) == 5
    assert last_end(start=start, duration_minutes=60, rule=until, timezone=BERLIN) == (
        berlin(2025, 1, 10, 10)
    )


def test_a_rule_without_end_repeats_up_to_the_horizon() -> None:
    start = berlin(2025, 1, 6)
    rule = "FREQ=WEEKLY;BYDAY=MO"
    assert occurrence_count(rule, start, BERLIN) is None
    assert last_end(start=start, duration_minutes=60, rule=rule, timezone=BERLIN) is None
    # still on Mondays at 09:00 twenty years later
    found = listed(start, rule, berlin(2045, 3, 1), berlin(2045, 3, 8))
    assert local_starts(found) == [datetime(2045, 3, 6, 9)]
    assert found[0].index == (date(2045, 3, 6) - date(2025, 1, 6)).days // 7
    # and not listed after the horizon
    assert listed(start, rule, berlin(2025 + HORIZON_YEARS, 1, 7), berlin(2060, 1, 1)) == []


def test_limit_keeps_the_first() -> None:
    start = berlin(2025, 1, 6)
    found = listed(start, "FREQ=DAILY", start, berlin(2026, 1, 1), limit=3)
    assert local_starts(found) == [datetime(2025, 1, d, 9) for d in (6, 7, 8)]
    assert listed(start, "FREQ=DAILY", start, berlin(2026, 1, 1), limit=0) == []


def test_bad_arguments() -> None:
    start = berlin(2025, 1, 6)
    with pytest.raises(ValueError, match="range_to lies before range_from"):
        listed(start, None, berlin(2025, 2, 1), berlin(2025, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        listed(start, None, datetime(2025, 1, 1), berlin(2025, 2, 1))
    with pytest.raises(ValueError, match="duration_minutes"):
        listed(start, None, *EVERYTHING, duration_minutes=0)


# --- exceptions --------------------------------------------------------------------------------


SERIES = berlin(2025, 1, 6)  # Mondays 09:00-10:00, ten of them
WEEKLY10 = "FREQ=WEEKLY;COUNT=10"


def test_a_skipped_occurrence_disappears() -> None:
    skip = berlin(2025, 1, 13)
    found = listed(SERIES, WEEKLY10, *EVERYTHING, exceptions=Exceptions(skipped=frozenset({skip})))
    assert skip not in [o.start for o in found]
    assert len(found) == 9
    assert [o.index for o in found[:3]] == [0, 2, 3]  # the others keep their place
    assert (
        listed(
            SERIES,
            WEEKLY10,
            *day_range(date(2025, 1, 13)),
            exceptions=Exceptions(skipped=frozenset({skip})),
        )
        == []
    )


def test_a_moved_occurrence_is_listed_at_its_new_time_only() -> None:
    original = berlin(2025, 1, 13)
    new = berlin(2025, 1, 15, 16)  # to Wednesday afternoon, and 30 minutes long
    moves = Exceptions(moved={original: Moved(start=new, duration_minutes=30)})
    # not at its old time any more
    assert listed(SERIES, WEEKLY10, *day_range(date(2025, 1, 13)), exceptions=moves) == []
    # but at its new one
    [moved] = listed(SERIES, WEEKLY10, *day_range(date(2025, 1, 15)), exceptions=moves)
    assert moved == Occurrence(
        original_start=original.astimezone(UTC),
        start=new.astimezone(UTC),
        end=new.astimezone(UTC) + timedelta(minutes=30),
        moved=True,
        index=1,
    )
    # in the right order among the others, and once
    week = listed(SERIES, WEEKLY10, berlin(2025, 1, 13, 0), berlin(2025, 1, 21), exceptions=moves)
    assert local_starts(week) == [datetime(2025, 1, 15, 16), datetime(2025, 1, 20, 9)]


def test_a_moved_occurrence_keeps_the_duration_unless_given() -> None:
    original = berlin(2025, 1, 20)
    moves = Exceptions(moved={original: Moved(start=berlin(2025, 1, 20, 11))})
    [moved] = listed(SERIES, WEEKLY10, *day_range(date(2025, 1, 20)), exceptions=moves)
    assert moved.end - moved.start == timedelta(hours=1)


def test_a_moved_occurrence_is_found_far_from_its_original_time() -> None:
    # the last one, moved a month later: after the rule's end
    original = berlin(2025, 3, 10)
    new = berlin(2025, 4, 14, 9)
    moves = Exceptions(moved={original: Moved(start=new, duration_minutes=120)})
    found = listed(SERIES, WEEKLY10, *day_range(date(2025, 4, 14)), exceptions=moves)
    assert [o.original_start for o in found] == [original.astimezone(UTC)]
    assert last_end(
        start=SERIES, duration_minutes=60, rule=WEEKLY10, timezone=BERLIN, exceptions=moves
    ) == berlin(2025, 4, 14, 11)
    # and the first one moved earlier than the series' start
    early = Exceptions(moved={SERIES: Moved(start=berlin(2025, 1, 2, 9))})
    assert first_start(start=SERIES, rule=WEEKLY10, timezone=BERLIN, exceptions=early) == (
        berlin(2025, 1, 2, 9)
    )
    assert first_start(start=SERIES, rule=WEEKLY10, timezone=BERLIN, exceptions=moves) == SERIES


def test_exceptions_for_dates_the_rule_does_not_have_are_ignored() -> None:
    not_one = berlin(2025, 1, 14)  # a Tuesday
    after = berlin(2025, 3, 17)  # after the tenth Monday
    stale = Exceptions(
        skipped=frozenset({not_one}), moved={after: Moved(start=berlin(2025, 1, 14, 12))}
    )
    found = listed(SERIES, WEEKLY10, *EVERYTHING, exceptions=stale)
    assert len(found) == 10 and not any(o.moved for o in found)
    assert not is_occurrence(start=SERIES, rule=WEEKLY10, timezone=BERLIN, original_start=after)
    assert is_occurrence(
        start=SERIES, rule=WEEKLY10, timezone=BERLIN, original_start=berlin(2025, 3, 10)
    )


def test_a_single_meeting_ignores_exceptions() -> None:
    exceptions = Exceptions(skipped=frozenset({SERIES}))
    assert len(listed(SERIES, None, *EVERYTHING, exceptions=exceptions)) == 1


def test_exceptions_name_instants_in_any_zone() -> None:
    in_utc = Exceptions(skipped=frozenset({utc(2025, 1, 13, 8)}))  # 09:00 in Berlin
    found = listed(SERIES, WEEKLY10, *EVERYTHING, exceptions=in_utc)
    assert len(found) == 9
    assert in_utc == Exceptions(skipped=frozenset({berlin(2025, 1, 13)}))


def test_exceptions_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="both skipped and moved"):
        Exceptions(skipped=frozenset({SERIES}), moved={SERIES: Moved(start=berlin(2025, 1, 7))})
    with pytest.raises(ValueError, match="aware"):
        Exceptions(skipped=frozenset({datetime(2025, 1, 13, 9)}))
    with pytest.raises(ValueError, match="aware"):
        Moved(start=datetime(2025, 1, 13, 9))
    with pytest.raises(ValueError, match="duration_minutes"):
        Moved(start=berlin(2025, 1, 13), duration_minutes=0)


# --- efficiency -------------------------------------------------------------------------------


def test_a_month_view_over_many_long_series_expands_each_once_and_only_so_far() -> None:
    # 300 standing meetings started up to three years ago, one in ten daily, without end.
    # What keeps the month view quick, said without a wall clock (the suite runs on loaded
    # machines): each series is expanded once, then served from the cache, and only as far
    # as the month asked for, not to its 25-year horizon.
    meetings = [
        (
            berlin(2022, 1, 3 + i % 5, 8 + i % 9, (i * 7) % 60),
            "FREQ=WEEKLY" if i % 10 else "FREQ=DAILY",
        )
        for i in range(300)
    ]
    month = (berlin(2025, 3, 1, 0), berlin(2025, 4, 1, 0))
    recurrence._cached_series.cache_clear()
    first = [listed(start, rule, *month) for start, rule in meetings]
    built = recurrence._cached_series.cache_info()
    again = [listed(start, rule, *month) for start, rule in meetings]
    served = recurrence._cached_series.cache_info()
    assert first == again
    assert served.misses == built.misses  # the second view built no series again
    assert served.hits - built.hits >= len(meetings)
    march = [date(2025, 3, d) for d in range(1, 32)]
    expected = sum(
        31 if rule == "FREQ=DAILY" else sum(d.weekday() == start.weekday() for d in march)
        for start, rule in meetings
    )
    assert sum(map(len, first)) == expected
    daily = recurrence._series("FREQ=DAILY", meetings[0][0], ZoneInfo(BERLIN))
    # Expanded lazily: a few days past the month, not ~9,000 days to the horizon.
    assert len(daily._starts) < (month[1] - meetings[0][0]).days + 40


# --- everything against plain dateutil --------------------------------------------------------

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # a half-hour DST shift
    "UTC",
]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def rule_texts(draw: st.DrawFn) -> str:
    """Rules that match often enough that a plain dateutil scan finds their first date fast."""
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    interval = draw(st.integers(1, 3))
    parts = [f"FREQ={freq}"]
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    filter_kind = draw(st.sampled_from(["none", "byday", "bymonthday"]))
    if filter_kind == "byday":
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
        if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            nth = draw(st.sampled_from([1, 2, 3, 4, -1]))
            days = [f"{nth}{day}" for day in days]
        parts.append("BYDAY=" + ",".join(days))
    elif filter_kind == "bymonthday" and freq != "WEEKLY":
        monthdays = st.sampled_from([*range(1, 29), -1, -2])
        days_of_month = draw(st.lists(monthdays, min_size=1, max_size=4, unique=True))
        parts.append("BYMONTHDAY=" + ",".join(map(str, days_of_month)))
    if (freq != "MONTHLY" or interval == 1) and draw(st.booleans()):
        months = draw(st.lists(st.integers(1, 12), min_size=2, max_size=6, unique=True))
        parts.append("BYMONTH=" + ",".join(map(str, months)))
    if len(parts) > 1 + (interval > 1) and draw(st.booleans()):
        parts.append(f"BYSETPOS={draw(st.sampled_from([1, -1]))}")
    if draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(DAYS))}")
    end = draw(st.sampled_from(["count", "until", "none"]))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    elif end == "until":
        parts.append(f"UNTIL={draw(st.dates(date(2020, 1, 1), date(2029, 12, 31))):%Y%m%d}")
    return ";".join(parts)


def reference(
    rule: str, start: datetime, zone: ZoneInfo, duration: timedelta, until: datetime
) -> list[tuple[datetime, datetime, datetime]]:
    """The series by dateutil alone, aware DTSTART in the zone: (original, start, end) in UTC."""
    local = start.astimezone(zone)
    found = []
    for when in rrulestr(rule, dtstart=local):
        instant = when.astimezone(UTC)
        if instant >= until:
            break
        found.append((instant, instant, instant + duration))
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=rule_texts(),
    zone_name=st.sampled_from(ZONES),
    seed=st.datetimes(datetime(2021, 1, 1), datetime(2027, 12, 31)),
    hour=st.integers(7, 21),
    minute=st.sampled_from([0, 15, 30, 45]),
    duration=st.integers(1, 26 * 60),
    window=st.tuples(st.integers(-3 * 1440, 1440), st.integers(1, 45 * 1440)),
    changes=st.lists(st.tuples(st.integers(-8, 8), st.integers(-4000, 4000), st.integers(0, 3))),
    data=st.data(),
)
def test_occurrences_agree_with_plain_dateutil(
    rule: str,
    zone_name: str,
    seed: datetime,
    hour: int,
    minute: int,
    duration: int,
    window: tuple[int, int],
    changes: list[tuple[int, int, int]],
    data: st.DataObject,
) -> None:
    zone = ZoneInfo(zone_name)
    seed_local = seed.replace(hour=hour, minute=minute, second=0, microsecond=0, tzinfo=zone)
    # the meeting starts on the rule's first date after the seed (the rule's own dateutil)
    body = ";".join(p for p in rule.split(";") if not p.startswith(("COUNT=", "UNTIL=")))
    first = next(iter(rrulestr(body, dtstart=seed_local)), None)
    if first is None or first.year > 2029:
        reject()
    start = first.astimezone(UTC)
    try:
        canonical = normalize_rule(rule, start, timezone=zone_name)
    except RecurrenceError as exc:
        refused = ("UNTIL lies before the start", "years", f"at most {MAX_OCCURRENCES}")
        if any(reason in str(exc) for reason in refused):
            reject()  # an end drawn before the start, past the horizon, or too many

        raise
    length = timedelta(minutes=duration)
    # a range around one of the first few years' occurrences, so that most ranges hold some
    nearby = reference(canonical, start, zone, length, start + timedelta(days=4 * 365))
    anchor = data.draw(st.integers(0, len(nearby) - 1))
    if data.draw(st.booleans()):  # a range with the anchor's start in it
        range_from = nearby[anchor][0] - timedelta(minutes=abs(window[0]))
        range_to = nearby[anchor][0] + timedelta(minutes=window[1])
    else:  # anywhere near it: in a gap, over a tail, ...
        range_from = nearby[anchor][0] + timedelta(minutes=window[0])
        range_to = range_from + timedelta(minutes=window[1])
    series = reference(canonical, start, zone, length, range_to + timedelta(days=1))

    # some occurrences skipped, some moved by up to ~3 days, some of those with a new length
    skipped: set[datetime] = set()
    moved: dict[datetime, Moved] = {}
    for step, offset_minutes, kind in changes:
        position = anchor + step
        if not 0 <= position < len(series):
            continue
        original = series[position][0]
        if original in skipped or original in moved:
            continue
        if kind == 0:
            skipped.add(original)
        else:
            new_minutes = None if kind == 1 else 15 * kind
            moved[original] = Moved(original + timedelta(minutes=offset_minutes), new_minutes)
    exceptions = Exceptions(skipped=frozenset(skipped), moved=moved)

    expected = []
    for index, (original, begin, end) in enumerate(series):
        if original in skipped:
            continue
        is_moved = original in moved
        if is_moved:
            how = moved[original]
            begin = how.start
            end = begin + (
                length if how.duration_minutes is None else timedelta(minutes=how.duration_minutes)
            )
        if begin < range_to and end > range_from:
            expected.append(Occurrence(original, begin, end, is_moved, index))
    expected.sort(key=lambda o: (o.start, o.original_start))
    event("nothing in range" if not expected else "some in range")
    if any(o.moved for o in expected):
        event("a moved one in range")
    if skipped:
        event("some skipped")

    found = occurrences(
        start=start,
        duration_minutes=duration,
        rule=canonical,
        timezone=zone_name,
        exceptions=exceptions,
        range_from=range_from,
        range_to=range_to,
    )
    assert found == expected
    # the same query again, now from the cache, in a different order of calls
    assert (
        occurrences(
            start=start,
            duration_minutes=duration,
            rule=rule,  # the rule as given, not its canonical form
            timezone=zone_name,
            exceptions=exceptions,
            range_from=range_from,
            range_to=range_to,
        )
        == expected
    )
    count = occurrence_count(canonical, start, zone_name)
    if "COUNT=" in canonical or "UNTIL=" in canonical:
        full = reference(canonical, start, zone, length, datetime(2100, 1, 1, tzinfo=UTC))
        assert count == len(full)
        assert (
            last_end(start=start, duration_minutes=duration, rule=canonical, timezone=zone_name)
            == full[-1][2]
        )
    else:
        assert count is None


def test_the_week_starts_on_monday_whatever_the_process_calendar_says() -> None:
    # dateutil's default WKST is calendar.firstweekday(), a process-wide setting
    previous = calendar.firstweekday()
    calendar.setfirstweekday(calendar.SUNDAY)
    try:
        start = datetime(1997, 8, 5, 10, tzinfo=NY)
        found = listed(start, "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU", *EVERYTHING)
    finally:
        calendar.setfirstweekday(previous)
    assert [o.start.astimezone(NY).day for o in found] == [5, 10, 19, 24]
