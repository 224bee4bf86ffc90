"""Calendar ranges, repeating meetings, exceptions, unlisted meetings and iCalendar export.

In process, on SQLite and PostgreSQL. Each check is what a person would see in the
Meeting Center's calendar or in their own calendar client.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from dateutil.rrule import rrulestr
from fastapi.testclient import TestClient

from moot.ems.auth.users import add_user
from tests.dates import monday_weeks_ahead, next_summer_time_end
from tests.integration.conftest import form_fields

BERLIN = ZoneInfo("Europe/Berlin")
# Days worked out from today: the EMS refuses a start in the past, so no test names a date.
SOON = monday_weeks_ahead(3)  # a Monday three weeks ahead
# The Monday two weeks before the clocks go back: two occurrences of a weekly meeting
# before the change, two after.
BEFORE_WINTER_TIME = next_summer_time_end(BERLIN, after=SOON) - timedelta(days=13)


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.combine(day, time(hour, minute), zone)


def create(api: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Planning", "timezone": "Europe/Berlin", **fields}
    if isinstance(body.get("start"), datetime):
        body["start"] = body["start"].isoformat()
    response = api.post("/api/v1/meetings", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def berlin_day(api: TestClient, day: date, **params: str) -> list[dict[str, Any]]:
    """The calendar of one day in Berlin."""
    start = at(day, 0).astimezone(UTC)
    end = at(day + timedelta(days=1), 0).astimezone(UTC)
    response = api.get(
        "/api/v1/calendar", params={"from": start.isoformat(), "to": end.isoformat(), **params}
    )
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def names(entries: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in entries]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_meeting_across_midnight_is_listed_on_both_days(api: TestClient) -> None:
    day = SOON + timedelta(days=2)  # a Wednesday
    create(api, name="Late call", start=at(day, 23, 30), duration_minutes=60)
    assert names(berlin_day(api, day)) == ["Late call"]
    assert names(berlin_day(api, day + timedelta(days=1))) == ["Late call"]
    assert berlin_day(api, day - timedelta(days=1)) == []
    assert berlin_day(api, day + timedelta(days=2)) == []


def test_weekly_meeting_keeps_its_local_time_across_daylight_saving(api: TestClient) -> None:
    first = BEFORE_WINTER_TIME  # a Monday; summer time ends on the Sunday 13 days later
    meeting = create(
        api,
        name="Weekly",
        start=at(first, 9),
        duration_minutes=60,
        recurrence="FREQ=WEEKLY;COUNT=4",
    )
    occurrences = api.get(f"/api/v1/meetings/{meeting['id']}/occurrences").json()
    starts = [utc(o["start"]) for o in occurrences]
    assert [s.astimezone(BERLIN).strftime("%a %d %H:%M") for s in starts] == [
        (first + timedelta(weeks=w)).strftime("%a %d 09:00") for w in range(4)
    ]
    assert [s.hour for s in starts] == [7, 7, 8, 8]  # UTC moves with the clocks
    for monday in (first + timedelta(weeks=w) for w in range(4)):
        assert names(berlin_day(api, monday)) == ["Weekly"]
        assert berlin_day(api, monday + timedelta(days=1)) == []
    assert berlin_day(api, first + timedelta(weeks=4)) == []
    # Found by a later occurrence in a meeting search over a range, too.
    after_the_change = api.get(
        "/api/v1/meetings",
        params={
            "from": at(first + timedelta(weeks=2), 0).isoformat(),
            "to": at(first + timedelta(weeks=6), 0).isoformat(),
        },
    ).json()["items"]
    assert [m["id"] for m in after_the_change] == [meeting["id"]]


def test_skip_and_move_one_occurrence(api: TestClient) -> None:
    first = SOON  # Monday
    meeting = create(
        api,
        name="Stand-up",
        start=at(first, 10),
        duration_minutes=15,
        recurrence="FREQ=DAILY;COUNT=5",
    )
    path = f"/api/v1/meetings/{meeting['id']}/exceptions"
    tuesday, wednesday = first + timedelta(days=1), first + timedelta(days=2)
    skipped = api.post(path, json={"original_start": at(tuesday, 10).isoformat(), "skip": True})
    assert skipped.status_code == 201, skipped.text
    moved = api.post(
        path,
        json={
            "original_start": at(wednesday, 10).isoformat(),
            "start": at(wednesday + timedelta(days=3), 14).isoformat(),  # to Saturday 14:00
            "duration_minutes": 30,
        },
    )
    assert moved.status_code == 201, moved.text
    assert berlin_day(api, tuesday) == []
    assert berlin_day(api, wednesday) == []
    saturday = berlin_day(api, wednesday + timedelta(days=3))
    assert names(saturday) == ["Stand-up"] and saturday[0]["moved"] is True
    assert utc(saturday[0]["end"]) - utc(saturday[0]["start"]) == timedelta(minutes=30)
    assert len(api.get(f"/api/v1/meetings/{meeting['id']}/occurrences").json()) == 4

    # Bad input: each refused with the reason, nothing changed.
    refusals = [
        ({"original_start": at(tuesday, 11).isoformat(), "skip": True}, "no occurrence then"),
        ({"original_start": at(tuesday, 10).isoformat()}, "either skip"),
        (
            {"original_start": at(tuesday, 10).replace(tzinfo=None).isoformat(), "skip": True},
            "offset",
        ),
    ]
    for body, reason in refusals:
        answer = api.post(path, json=body)
        assert answer.status_code == 422, answer.text
        assert reason in str(answer.json()["detail"])
    single = create(api, name="Once", start=at(first, 12))
    answer = api.post(
        f"/api/v1/meetings/{single['id']}/exceptions",
        json={"original_start": at(first, 12).isoformat(), "skip": True},
    )
    assert answer.status_code == 422 and "does not repeat" in answer.text

    # Restored: it happens as the rule says again.
    restore = api.delete(path, params={"original_start": at(tuesday, 10).isoformat()})
    assert restore.status_code == 204
    assert names(berlin_day(api, tuesday)) == ["Stand-up"]
    assert [e["skipped"] for e in api.get(path).json()] == [False]


def test_unlisted_meetings_are_found_only_by_their_whole_name(api: TestClient) -> None:
    start = at(SOON + timedelta(days=1), 9)
    secret = create(api, name="Merger talks", start=start, unlisted=True)
    create(api, name="Team lunch", start=start)
    assert names(berlin_day(api, start.date())) == ["Team lunch"]
    listed = api.get("/api/v1/meetings", params={"q": "Merger"}).json()["items"]
    assert listed == []
    assert [m["name"] for m in api.get("/api/v1/meetings").json()["items"]] == ["Team lunch"]
    duplicate = api.post(
        "/api/v1/meetings",
        json={"name": "Merger talks", "start": start.isoformat(), "unlisted": True},
    )
    assert duplicate.status_code == 422
    assert "exists already" in duplicate.json()["detail"][0]["msg"]
    # Renaming another unlisted meeting to that name, or making a listed one of that name
    # unlisted: refused the same way, and nothing of the change is kept.
    other = create(api, name="Board dinner", start=start, unlisted=True)
    listed_twin = create(api, name="Merger talks", start=start)
    for meeting_id, patch in (
        (other["id"], {"name": "Merger talks", "duration_minutes": 90}),
        (listed_twin["id"], {"unlisted": True}),
    ):
        refused = api.patch(f"/api/v1/meetings/{meeting_id}", json=patch)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["body", "name"]
        assert "exists already" in refused.json()["detail"][0]["msg"]
    kept = api.get(f"/api/v1/meetings/{other['id']}").json()
    assert kept["name"] == "Board dinner" and kept["duration_minutes"] == 60
    assert api.get(f"/api/v1/meetings/{listed_twin['id']}").json()["unlisted"] is False
    # Typing the whole name leads to it; a part of the name does not.
    found = api.post(
        "/attend-by-name", data=form_fields(api, name="Merger talks"), follow_redirects=False
    )
    assert found.status_code == 303 and found.headers["location"] == f"/m/{secret['id']}"
    partial = api.post(
        "/attend-by-name", data=form_fields(api, name="Merger"), follow_redirects=False
    )
    assert partial.status_code == 404 and "No meeting is called" in partial.text


def test_ics_and_personal_feed_read_by_a_calendar_library(
    api: TestClient, database_url: str
) -> None:
    asyncio.run(add_user(database_url, "carol", "carol-password"))
    first = BEFORE_WINTER_TIME
    hostile = 'Budget; review, "Q4"\n<script>x</script>'
    meeting = create(
        api,
        name=hostile,
        moderator="carol",
        start=at(first, 9),
        duration_minutes=45,
        recurrence="FREQ=WEEKLY;COUNT=3",
    )
    path = f"/api/v1/meetings/{meeting['id']}/exceptions"
    api.post(
        path, json={"original_start": at(first + timedelta(weeks=1), 9).isoformat(), "skip": True}
    )
    api.post(
        path,
        json={
            "original_start": at(first + timedelta(weeks=2), 9).isoformat(),
            "start": at(first + timedelta(weeks=2), 11).isoformat(),
        },
    )
    answer = api.get(f"/meetings/{meeting['id']}.ics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    parsed = icalendar.Calendar.from_ical(answer.content)
    events = [e for e in parsed.walk("VEVENT")]
    main = next(e for e in events if "RECURRENCE-ID" not in e)
    assert str(main["SUMMARY"]) == hostile
    assert main.decoded("DTSTART") == at(first, 9)
    rule = rrulestr(
        main["RRULE"].to_ical().decode(), dtstart=main.decoded("DTSTART").replace(tzinfo=None)
    )
    skipped = {d.replace(tzinfo=None) for d in _exdates(main)}
    override = next(e for e in events if "RECURRENCE-ID" in e)
    replaced = override.decoded("RECURRENCE-ID").replace(tzinfo=None)
    # The second is skipped, the third happens at 11:00 instead of 09:00.
    assert [d for d in rule if d not in skipped and d != replaced] == [
        at(first, 9).replace(tzinfo=None)
    ]
    assert replaced == at(first + timedelta(weeks=2), 9).replace(tzinfo=None)
    assert override.decoded("DTSTART") == at(first + timedelta(weeks=2), 11)

    # carol's feed, at the secret address she made, as a calendar program reads it.
    token = api.post(
        "/api/v1/auth/token", json={"username": "carol", "password": "carol-password"}
    ).json()["token"]
    made = api.post("/api/v1/calendar/feed", headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201, made.text
    address = made.json()["url"].removeprefix(api.app.state.ems.meetings.public_url)  # type: ignore[attr-defined]
    feed = api.get(address, headers={"Authorization": ""})
    assert feed.status_code == 200
    calendar = icalendar.Calendar.from_ical(feed.content)
    assert str(calendar["X-WR-CALNAME"]) == "Moot meetings of carol"
    assert {str(e["UID"]) for e in calendar.walk("VEVENT")} == {f"{meeting['id']}@moot"}


def _exdates(event: icalendar.Event) -> list[datetime]:
    value = event.get("EXDATE")
    if value is None:
        return []
    found: list[datetime] = []
    for item in value if isinstance(value, list) else [value]:
        found.extend(d.dt for d in item.dts)
    return found


def test_calendar_ranges_that_make_no_sense_are_refused(api: TestClient) -> None:
    for params, reason in (
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}, "at most 62 days"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "after from"),
        ({"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, "offset"),
    ):
        answer = api.get("/api/v1/calendar", params=params)
        assert answer.status_code == 422, answer.text
        assert reason in str(answer.json()["detail"])
    bad_rule = api.post(
        "/api/v1/meetings",
        json={
            "name": "x",
            "start": at(SOON, 9).isoformat(),
            "recurrence": "FREQ=WEEKLY;COUNT=100000",
        },
    )
    assert bad_rule.status_code == 422 and "at most 1000" in bad_rule.text
