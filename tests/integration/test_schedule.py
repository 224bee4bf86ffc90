"""Meetings open at their start and end at their end, on SQLite and PostgreSQL.

In process, with a fake room server; the meeting clock is driven by the test (`tick`) with
the time it would be, so no test waits for a meeting's hour. The lobby and a real opening
at the start time run against real processes in tests/e2e/test_meeting_center.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from moot.ems.meetings import MeetingService
from tests.fake_room import SECRET, FakeRoom

START = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)


@pytest.fixture
def ems_settings() -> dict[str, Any]:
    return {
        "secret": SECRET,
        "heartbeat_interval": 60,  # the fake need not report to stay online
        "clock_interval": 60,  # the test moves the clock itself
    }


@pytest.fixture
def room(api: TestClient) -> Iterator[FakeRoom]:
    fake = FakeRoom(api, "r1")
    yield fake
    fake.close()


def tick(api: TestClient, at: datetime) -> None:
    """One run of the EMS's meeting clock, as if it were `at`."""
    service: MeetingService = api.app.state.ems.meetings  # type: ignore[attr-defined]
    api.portal.call(service.tick, at)  # type: ignore[union-attr]


def status(api: TestClient, meeting_id: str) -> str:
    result: str = api.get(f"/api/v1/meetings/{meeting_id}").json()["status"]
    return result


def schedule(api: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Review", "start": START.isoformat(), "duration_minutes": 30, **fields}
    response = api.post("/api/v1/meetings", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_meeting_opens_at_its_start_and_ends_at_its_end(api: TestClient, room: FakeRoom) -> None:
    meeting = schedule(api)
    tick(api, START - timedelta(minutes=1))
    assert status(api, meeting["id"]) == "scheduled"  # not yet
    tick(api, START + timedelta(seconds=1))
    assert status(api, meeting["id"]) == "in_progress"  # opened by itself, nobody there yet
    assert room.opened == [meeting["id"]]
    tick(api, START + timedelta(minutes=29))
    assert status(api, meeting["id"]) == "in_progress"
    tick(api, START + timedelta(minutes=30, seconds=1))
    assert status(api, meeting["id"]) == "ended"  # nobody in it: it ends
    assert any(
        c["type"] == "close_meeting" and "its schedule" in c["reason"] for c in room.commands
    )


def test_a_meeting_with_people_in_it_runs_on_and_its_moderator_is_told_once(
    api: TestClient, room: FakeRoom
) -> None:
    meeting = schedule(api)
    tick(api, START + timedelta(seconds=1))
    room.report({meeting["id"]: 3})
    _wait_for(lambda: _participants(api, meeting["id"]) == 3)
    for minutes in (31, 32):  # twice past its end
        tick(api, START + timedelta(minutes=minutes))
        assert status(api, meeting["id"]) == "in_progress"
    notices = [c for c in room.commands if c["type"] == "notice"]
    assert len(notices) == 1
    assert notices[0]["to"] == "moderators" and notices[0]["meeting_id"] == meeting["id"]
    assert "time is over" in notices[0]["text"]
    room.report({meeting["id"]: 0})  # the last one left
    _wait_for(lambda: _participants(api, meeting["id"]) == 0)
    tick(api, START + timedelta(minutes=33))
    assert status(api, meeting["id"]) == "ended"


def test_a_repeating_meeting_waits_for_its_next_occurrence_with_its_chat(
    api: TestClient, room: FakeRoom
) -> None:
    meeting = schedule(api, recurrence="FREQ=DAILY;COUNT=2", timezone="UTC")
    tick(api, START + timedelta(seconds=1))
    assert status(api, meeting["id"]) == "in_progress"
    tick(api, START + timedelta(minutes=31))
    assert status(api, meeting["id"]) == "scheduled"  # its next occurrence is tomorrow
    tomorrow = START + timedelta(days=1)
    tick(api, tomorrow + timedelta(seconds=1))
    assert status(api, meeting["id"]) == "in_progress"
    opens = [c for c in room.commands if c["type"] == "open_meeting"]
    assert [c["epoch"] for c in opens] == [1, 2]  # the second opening rebuilds from the journal
    tick(api, tomorrow + timedelta(minutes=31))
    assert status(api, meeting["id"]) == "ended"  # no occurrence after the last


def test_attending_early_gives_the_time_it_opens(api: TestClient, room: FakeRoom) -> None:
    meeting = schedule(api)
    answer = api.get(f"/m/{meeting['id']}", params={"name": "Ann"}, follow_redirects=False)
    assert answer.status_code == 200
    assert "You are in the lobby" in answer.text
    assert START.isoformat() in answer.text  # the lobby counts down to this
    assert status(api, meeting["id"]) == "scheduled"


def _participants(api: TestClient, meeting_id: str) -> int:
    cluster = api.get("/api/v1/cluster").json()
    for server in cluster["servers"]:
        for m in server["meetings"]:
            if m["id"] == meeting_id:
                return len(m["participants"])
    return 0


def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    """Until the EMS has read the fake's report (it arrives on another thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the report did not arrive"
        time.sleep(0.02)
