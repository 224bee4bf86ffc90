"""The reports' pure parts: ranges, days in a zone, clock changes, peaks, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moot.core import reports as r

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_range_defaults_to_30_days_to_today_in_utc() -> None:
    rng = r.parse_range(None, None, None, NOW)
    assert (rng.first, rng.last, rng.zone.key) == (date(2026, 11, 3), date(2026, 12, 2), "UTC")
    assert len(rng.days) == 30


def test_today_is_the_zones_today() -> None:
    late = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)  # already the 3rd in Helsinki
    assert r.parse_range(None, None, "Europe/Helsinki", late).last == date(2026, 12, 3)
    assert r.parse_range("2026-12-01", None, "UTC", late).last == date(2026, 12, 2)
    assert r.parse_range("2027-01-05", None, "UTC", late).last == date(2027, 1, 5)  # not before


@pytest.mark.parametrize(
    ("first", "last", "tz", "field", "words"),
    [
        ("2026-10-26", "2026-10-24", "UTC", "to", "is before the first"),
        ("2023-12-31", "2026-12-31", "UTC", "to", "at most 1096 days"),
        ("26-10-2026", "2026-10-24", "UTC", "from", "write it as YYYY-MM-DD"),
        ("2026-10-24", "2026-02-30", "UTC", "to", "is not a date"),
        ("2026-10-24", "2026-10-25", "Europe/Pariss", "tz", "is not a time zone"),
        ("2026-10-24", "2026-10-25", "/etc/localtime", "tz", "is not a time zone"),
        ("2026-10-24", "2026-10-25", "../UTC", "tz", "is not a time zone"),
        ("2026-10-24", "2026-10-25", "Europe", "tz", "is not a time zone"),  # a folder
        ("9999-12-30", "9999-12-31", "UTC", "from", "give a day from 1970-01-01 to 2999-12-31"),
        ("1969-12-31", "1970-01-01", "UTC", "from", "give a day from 1970-01-01"),
    ],
)
def test_bad_ranges(first: str, last: str, tz: str, field: str, words: str) -> None:
    with pytest.raises(r.RangeError) as caught:
        r.parse_range(first, last, tz, NOW)
    assert caught.value.field == field and words in str(caught.value)


def test_three_years_with_a_leap_day_are_allowed() -> None:
    rng = r.parse_range("2024-01-01", "2026-12-31", "UTC", NOW)
    assert len(rng.days) == r.MAX_DAYS == 1096


def test_a_day_is_midnight_to_midnight_in_the_zone() -> None:
    rng = r.parse_range("2026-10-25", "2026-10-25", "Europe/Paris", NOW)
    # Summer time ends that night: the day lasts 25 hours.
    assert (rng.start, rng.end) == (at("2026-10-24 22:00"), at("2026-10-25 23:00"))
    assert r.local_day(at("2026-10-24 22:30"), PARIS) == date(2026, 10, 25)
    assert r.local_day(at("2026-10-24 21:59"), PARIS) == date(2026, 10, 24)


def test_offsets_one_piece_without_clock_change() -> None:
    rng = r.parse_range("2026-11-01", "2026-11-30", "Asia/Kolkata", NOW)
    assert r.offset_segments(rng.zone, rng.start, rng.end) == [(rng.end, 5 * 3600 + 1800)]
    utc = r.parse_range("2026-01-01", "2026-12-31", "UTC", NOW)
    assert r.offset_segments(utc.zone, utc.start, utc.end) == [(utc.end, 0)]


def test_offsets_change_when_the_clocks_do() -> None:
    rng = r.parse_range("2026-03-28", "2026-10-26", "Europe/Paris", NOW)
    assert r.offset_segments(PARIS, rng.start, rng.end) == [
        (at("2026-03-29 01:00"), 3600),
        (at("2026-10-25 01:00"), 7200),
        (rng.end, 3600),
    ]
    # Half an hour of summer time, at 2:00 local (15:00 UTC): Lord Howe Island.
    howe = ZoneInfo("Australia/Lord_Howe")
    start, end = at("2026-04-01 00:00"), at("2026-04-10 00:00")
    assert r.offset_segments(howe, start, end) == [(at("2026-04-04 15:00"), 39600), (end, 37800)]


def test_a_change_at_the_very_end_is_outside_the_range() -> None:
    end = at("2026-10-25 01:00")
    assert r.offset_segments(PARIS, at("2026-10-24 00:00"), end) == [(end, 7200)]


def rng_of(first: str, last: str, tz: str = "UTC") -> r.DateRange:
    return r.parse_range(first, last, tz, NOW)


def test_peak_counts_people_not_stays() -> None:
    stays = [
        ("bob", at("2026-10-24 22:15"), at("2026-10-24 23:45")),
        ("dave", at("2026-10-24 22:30"), at("2026-10-24 23:45")),
        ("dave", at("2026-10-24 23:00"), at("2026-10-24 23:45")),  # a failover's second stay
        ("bob", at("2026-10-24 23:10"), at("2026-10-24 23:20")),  # a second meeting at once
    ]
    peaks = r.daily_peaks(stays, rng_of("2026-10-24", "2026-10-24"), NOW)
    assert peaks == {date(2026, 10, 24): r.Peak(2, at("2026-10-24 22:30"))}


def test_who_leaves_at_ten_and_who_joins_at_ten_are_not_together() -> None:
    stays = [
        ("alice", at("2026-10-24 09:00"), at("2026-10-24 10:00")),
        ("bob", at("2026-10-24 10:00"), at("2026-10-24 11:00")),
    ]
    peaks = r.daily_peaks(stays, rng_of("2026-10-24", "2026-10-24"), NOW)
    assert peaks[date(2026, 10, 24)] == r.Peak(1, at("2026-10-24 09:00"))


def test_a_stay_over_midnight_counts_on_both_days() -> None:
    stays = [("alice", at("2026-10-24 23:00"), at("2026-10-25 01:00"))]
    peaks = r.daily_peaks(stays, rng_of("2026-10-24", "2026-10-26"), NOW)
    assert peaks == {
        date(2026, 10, 24): r.Peak(1, at("2026-10-24 23:00")),
        date(2026, 10, 25): r.Peak(1, at("2026-10-25 00:00")),  # there since midnight
        date(2026, 10, 26): r.Peak(0, None),
    }


def test_an_open_stay_lasts_until_now_and_stays_outside_do_not_count() -> None:
    stays = [
        ("alice", at("2026-12-01 10:00"), None),
        ("bob", at("2026-11-01 10:00"), at("2026-11-01 11:00")),  # before the range
        ("carol", at("2026-12-02 13:00"), None),  # after now: not yet
    ]
    peaks = r.daily_peaks(stays, rng_of("2026-12-01", "2026-12-03"), NOW)
    assert [peaks[d].people for d in sorted(peaks)] == [1, 1, 0]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.integers(0, 4 * 24 * 4),  # quarter hours over four days
            st.integers(1, 40),
        ),
        max_size=12,
    ),
    st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
)
def test_peaks_match_counting_every_quarter_hour(raw: list[tuple[str, int, int]], tz: str) -> None:
    """Stays on a quarter-hour grid: presence is constant within each quarter hour, so
    counting people at every quarter hour of each day gives the exact peak."""
    base = at("2026-10-23 12:00")
    quarter = timedelta(minutes=15)
    stays = [(u, base + s * quarter, base + (s + n) * quarter) for u, s, n in raw]
    rng = rng_of("2026-10-24", "2026-10-26", tz)
    peaks = r.daily_peaks(stays, rng, NOW)
    for day in rng.days:
        moment, end = r.day_start(day, rng.zone), r.day_start(day + timedelta(1), rng.zone)
        best, when = 0, None
        while moment < end:
            here = len({u for u, j, left in stays if j <= moment < left})
            if here > best:
                best, when = here, moment
            moment += quarter
        assert peaks[day] == r.Peak(best, when), day


def test_peaks_of_moments_carry_the_count_over_days_without_moments() -> None:
    """The database's three moments per day give daily_peaks' figures: a day without
    moments keeps the count the last moment left; a moment at midnight sets it."""
    rng = rng_of("2026-10-24", "2026-10-27")
    d24, d26, d27 = date(2026, 10, 24), date(2026, 10, 26), date(2026, 10, 27)
    moments = {
        d24: r.DayMoments(at("2026-10-24 09:00"), 1, at("2026-10-24 10:00"), 3, 2),
        d26: r.DayMoments(at("2026-10-26 08:00"), 1, at("2026-10-26 08:00"), 1, 0),
        d27: r.DayMoments(at("2026-10-27 00:00"), 4, at("2026-10-27 00:00"), 4, 0),
    }
    assert r.peaks_of_moments(rng, moments) == {
        d24: r.Peak(3, at("2026-10-24 10:00")),
        date(2026, 10, 25): r.Peak(2, at("2026-10-25 00:00")),  # two stayed all day
        d26: r.Peak(2, at("2026-10-26 00:00")),  # still two at midnight, one later
        d27: r.Peak(4, at("2026-10-27 00:00")),
    }


def test_csv_cells_a_spreadsheet_would_run_are_defused() -> None:
    assert [r.csv_cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx")] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
    ]
    assert [r.csv_cell(v) for v in ("room1", 3, 2.5, None, "")] == ["room1", "3", "2.5", "", ""]


def test_csv_text_is_the_table() -> None:
    rng = rng_of("2026-10-24", "2026-10-25")
    report = r.server_peaks_report(
        rng,
        [r.ServerPeak("=HYPERLINK(1)", 2, 1, at("2026-10-24 09:00"), 3, None, 50.25, 10.0)],
    )
    lines = list(csv.reader(io.StringIO(r.csv_text(report))))
    assert lines == [
        [c.key for c in report.columns],
        ["'=HYPERLINK(1)", "2", "1", "2026-10-24T09:00:00+00:00", "3", "", "50.2", "10.0"],
    ]
    assert r.csv_filename(report) == "moot-server_peaks-2026-10-24-to-2026-10-25.csv"


def test_csv_ends_with_the_summary_rows_of_the_page() -> None:
    """Distinct users and the peak over the range cannot be summed from the days."""
    rng = rng_of("2026-10-24", "2026-10-25")
    day1, day2 = date(2026, 10, 24), date(2026, 10, 25)
    peaks = {day1: r.Peak(2, at("2026-10-24 09:00")), day2: r.Peak(3, at("2026-10-25 10:30"))}
    report = r.logins_report(rng, {day1: (4, 2), day2: (3, 2)}, 3, peaks)
    lines = list(csv.reader(io.StringIO(r.csv_text(report))))
    assert lines[1:] == [
        ["2026-10-24", "4", "2", "2", "2026-10-24T09:00:00+00:00"],
        ["2026-10-25", "3", "2", "3", "2026-10-25T10:30:00+00:00"],
        ["all days", "7", "3", "3", "2026-10-25T10:30:00+00:00"],
    ]
    meetings = r.meetings_report(rng, {(day1, "broadcast"): r.MeetingFigures(1, 1, 600, 5)})
    tail = list(csv.reader(io.StringIO(r.csv_text(meetings))))[-3:]
    assert [line[:3] for line in tail] == [
        ["all days", "collaboration", "0"],
        ["all days", "broadcast", "1"],
        ["all days", "all types", "1"],
    ]


def test_meeting_averages_and_types() -> None:
    rng = rng_of("2026-10-24", "2026-10-24")
    day = date(2026, 10, 24)
    report = r.meetings_report(
        rng,
        {
            (day, "collaboration"): r.MeetingFigures(3, 2, 5400, 7),
            (day, "webinar"): r.MeetingFigures(1, 0, 0, 4),  # a type this version lacks
        },
    )
    assert [
        (row["type"], row["average_minutes"], row["average_participants"]) for row in report.rows
    ] == [
        ("collaboration", 45.0, 2.3),
        ("broadcast", None, None),
        ("webinar", None, 4.0),
    ]
    assert report.summary[-1] == {
        "day": "all days",
        "type": "all types",
        "meetings": 4,
        "ended": 2,
        "minutes": 90.0,
        "average_minutes": 45.0,
        "participants": 11,
        "average_participants": 2.8,
    }
    assert report.chart is not None and [s[0] for s in report.chart.series] == [
        "Collaboration",
        "Broadcast",
        "Webinar",
    ]


def test_reports_of_figures_per_day_have_a_row_each_day_and_the_range_in_summary() -> None:
    rng = r.parse_range("2026-12-01", "2026-12-03", "UTC", NOW)
    failures = r.login_failures_report(rng, {date(2026, 12, 2): (5, 2, 3)}, (5, 2, 3))
    assert [row["failures"] for row in failures.rows] == [0, 5, 0]
    assert failures.rows[1] == {"day": "2026-12-02", "failures": 5, "user_names": 2, "addresses": 3}
    assert failures.summary == [{"day": "all days", "failures": 5, "user_names": 2, "addresses": 3}]
    assert failures.chart is not None and failures.chart.series == [("Failed sign-ins", [0, 5, 0])]
    daily = {date(2026, 12, 1): (3, 10, 2), date(2026, 12, 3): (1, 4, 5)}
    community = r.community_report(rng, daily)
    assert [row["messages"] for row in community.rows] == [10, 0, 4]
    # Sign-ins and messages add up; the most connections at once is the highest day's.
    assert community.summary == [
        {"day": "all days", "signins": 4, "messages": 14, "peak_connections": 5}
    ]
    assert community.chart is not None
    assert [label for label, _ in community.chart.series] == ["Sign-ins", "Instant messages"]


def test_every_report_has_a_kind() -> None:
    assert r.REPORT_NAMES == (
        "logins",
        "login_failures",
        "meetings",
        "capacity_warnings",
        "server_peaks",
        "community",
    )
    assert r.kind_of("nope") is None
