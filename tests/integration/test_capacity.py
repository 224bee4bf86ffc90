"""Placement rules through the API, on SQLite and PostgreSQL: meeting locations, capacity
warnings and refusals that say why.

In process, room servers are fakes on the control WebSocket that answer every command; the
last test runs real processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from moot.ems.app import create_app
from moot.ems.cluster.capacity_warnings import CapacityWatch
from moot.harness import Cluster
from moot.infra.settings import EmsSettings
from tests.fake_room import SECRET, FakeRoom


def soon() -> datetime:
    """Two minutes from now, when asked: a meeting that may be opened now (early join).

    Not a constant of the module: a long run reaches a test after such a time has passed."""
    return (datetime.now(UTC) + timedelta(minutes=2)).replace(microsecond=0)


@pytest.fixture
def ems_settings() -> dict[str, Any]:
    return {
        "secret": SECRET,
        "heartbeat_interval": 60,  # the fakes need not report to stay online
    }


@pytest.fixture
def rooms(api: TestClient) -> Iterator[Callable[..., FakeRoom]]:
    started: list[FakeRoom] = []

    def start(name: str, **limits: Any) -> FakeRoom:
        room = FakeRoom(api, name, **limits)
        started.append(room)
        return room

    yield start
    for room in started:
        room.close()


def create(api: TestClient, status: int = 201, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/v1/meetings", json={"name": "Planning", **fields})
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def start(api: TestClient, meeting_id: str) -> str:
    """Attend a scheduled meeting, which starts it; the server it runs on."""
    response = api.get(f"/m/{meeting_id}", params={"name": "Alice"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    server: str = api.get(f"/api/v1/meetings/{meeting_id}").json()["server"]
    return server


def warnings(api: TestClient, **params: str) -> list[dict[str, Any]]:
    """The warnings endpoint's answer once every warning raised so far is stored (they are
    stored in the background: the test waits for that store, not for a while)."""
    watch: CapacityWatch = api.app.state.ems.cluster.capacity  # type: ignore[attr-defined]
    api.portal.call(watch.settle)  # type: ignore[union-attr]
    response = api.get("/api/v1/capacity/warnings", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


def reported(api: TestClient, meeting_id: str, participants: int) -> None:
    """Until the EMS has read a fake's report of that many people in the meeting (the report
    arrives on another thread); a warning it raises is raised by then."""
    deadline = time.monotonic() + 5
    while True:
        found = api.get("/api/v1/cluster").json()["meetings"]
        if [len(m["participants"]) for m in found if m["id"] == meeting_id] == [participants]:
            return
        assert time.monotonic() < deadline, f"no report of {participants} in {meeting_id}"
        time.sleep(0.02)


def test_location_fields_are_stored_changed_and_checked(api: TestClient) -> None:
    plain = create(api, start=soon().isoformat())
    assert (plain["location"], plain["location_required"]) == ("", False)

    meeting = create(api, start=soon().isoformat(), location=" eu-west ", location_required=True)
    assert (meeting["location"], meeting["location_required"]) == ("eu-west", True)
    url = f"/api/v1/meetings/{meeting['id']}"
    assert api.get(url).json()["location"] == "eu-west"
    listed = api.get("/api/v1/meetings").json()["items"]
    assert {m["location"] for m in listed} == {"", "eu-west"}

    patched = api.patch(url, json={"location": "us-east"}).json()
    assert (patched["location"], patched["location_required"]) == ("us-east", True)
    response = api.patch(url, json={"location": ""})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "location_required"]
    patched = api.patch(url, json={"location": "", "location_required": False}).json()
    assert (patched["location"], patched["location_required"]) == ("", False)
    for body in ({"location": None}, {"location_required": None}, {"location": "x" * 65}):
        assert api.patch(url, json=body).status_code == 422, body

    refused = api.post(
        "/api/v1/meetings",
        json={"name": "x", "start": soon().isoformat(), "location_required": True},
    )
    assert refused.status_code == 422
    assert "location_required needs a location" in refused.text


def test_warnings_endpoint_checks_its_query(api: TestClient) -> None:
    assert api.get("/api/v1/capacity/warnings").json() == []
    naive = api.get("/api/v1/capacity/warnings", params={"from": "2026-01-01T00:00:00"})
    assert naive.status_code == 422
    assert api.get("/api/v1/capacity/warnings", params={"limit": 0}).status_code == 422


def test_a_scheduled_meeting_without_room_runs_with_a_warning(
    api: TestClient, rooms: Callable[..., FakeRoom]
) -> None:
    rooms("r1", max_active_meetings=1)
    at = soon()
    first = create(api, start=at.isoformat())
    assert first["booked_server"] == "r1" and warnings(api) == []
    second = create(api, start=at.isoformat())  # booked beyond r1's limits: said at once
    assert second["booked_server"] == "r1"
    [booking] = warnings(api)
    assert (booking["kind"], booking["meeting_id"]) == ("no_room", second["id"])
    assert booking["message"].startswith(f"booking {at:%Y-%m-%d %H:%M}-")
    # Starting the first goes over too: the second is booked on r1 for the same hour.
    assert start(api, first["id"]) == "r1"
    assert warnings(api)[0]["meeting_id"] == first["id"]
    assert start(api, second["id"]) == "r1"  # no room anywhere: the least overloaded
    warning, _, _ = warnings(api)  # newest first
    assert warning["kind"] == "no_room"
    assert (warning["meeting_id"], warning["server"]) == (second["id"], "r1")
    assert "r1 takes it over its limits (2 of 1 meetings" in warning["message"]

    at = datetime.fromisoformat(warning["at"])
    hour = timedelta(hours=1)
    assert len(warnings(api, **{"from": (at - hour).isoformat()})) == 3
    assert warnings(api, **{"from": (at + hour).isoformat()}) == []
    assert warnings(api, to=(at - hour).isoformat()) == []
    assert len(warnings(api, to=(at + hour).isoformat())) == 3


def test_an_instant_meeting_nobody_takes_is_refused_saying_why(
    api: TestClient, rooms: Callable[..., FakeRoom]
) -> None:
    assert "no room server is registered" in create(api, 503)["detail"]
    rooms("r1", instant_meetings=0, location="eu")
    refused = create(api, 503)
    assert refused["detail"] == (
        "no room server can host this meeting now: "
        "every room server is at its instant-meeting limit"
    )
    refused = create(api, 503, location="us", location_required=True)
    assert refused["detail"].endswith('no room server in location "us"')
    assert api.get("/api/v1/meetings").json()["items"] == []  # nothing half-created

    # Scheduled meetings still run there.
    scheduled = create(api, start=soon().isoformat(), location="eu", location_required=True)
    assert start(api, scheduled["id"]) == "r1"

    rooms("r2", instant_meetings=1, location="us")
    assert create(api)["server"] == "r2"
    refused = create(api, 503)
    assert refused["detail"].endswith("every room server is at its instant-meeting limit")


def test_locations_guide_placement(api: TestClient, rooms: Callable[..., FakeRoom]) -> None:
    rooms("eu1", location="eu")
    rooms("us1", location="us")
    assert create(api, location="us")["server"] == "us1"
    assert create(api, location="eu", location_required=True)["server"] == "eu1"
    assert create(api, location="asia")["server"] in {"eu1", "us1"}  # preferred: anywhere
    assert warnings(api) == []


def test_too_large_and_crowded_meetings_raise_warnings(
    api: TestClient, rooms: Callable[..., FakeRoom]
) -> None:
    room = rooms("small", max_users_per_meeting=3)
    meeting = create(api, expected_participants=10)
    assert meeting["server"] == "small"  # limits guide placement, they never stop a meeting
    [warning] = warnings(api)
    assert warning["kind"] == "meeting_too_large"
    assert (
        "10 expected participants exceed small's max users per meeting (3)" in (warning["message"])
    )

    room.report({meeting["id"]: 5})
    reported(api, meeting["id"], 5)
    items = warnings(api)
    assert [w["kind"] for w in items] == ["participants_over_limit", "meeting_too_large"]
    assert items[0]["message"] == (
        f"meeting {meeting['id']} has 5 live participants on small, "
        "more than its max users per meeting (3)"
    )
    room.report({meeting["id"]: 6})  # warned of at most once an hour
    reported(api, meeting["id"], 6)
    assert len(warnings(api)) == 2


@pytest.mark.processes
def test_real_room_servers_without_instant_meetings_refuse_one_saying_why(
    database_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(workdir=tmp_path, database_url=database_url)
    try:
        cluster.start_ems()
        cluster.start_rooms("room1", "room2", MOOT_INSTANT_MEETINGS="0")
        instant = cluster.client.post(
            f"{cluster.ems_url}/api/v1/meetings", json={"name": "Now"}, timeout=10
        )
        assert instant.status_code == 503, instant.text
        assert instant.json()["detail"] == (
            "no room server can host this meeting now: "
            "every room server is at its instant-meeting limit"
        )
        servers = cluster.client.get(
            f"{cluster.ems_url}/api/v1/servers", timeout=10, headers=cluster.admin
        ).json()
        assert [s["instant_meetings"] for s in servers] == [0, 0]
        # A scheduled meeting still starts there.
        scheduled = cluster.client.post(
            f"{cluster.ems_url}/api/v1/meetings",
            json={"name": "Later", "start": (datetime.now(UTC) + timedelta(minutes=2)).isoformat()},
            timeout=10,
        ).json()
        attend = cluster.client.get(
            f"{cluster.ems_url}/m/{scheduled['id']}", params={"name": "Alice"}, timeout=10
        )
        assert attend.status_code == 303, attend.text
    finally:
        cluster.stop()


# -- resource booking and capacity planning ----------------------------------------------

TOMORROW_9 = (datetime.now(UTC) + timedelta(days=1)).replace(
    hour=9, minute=0, second=0, microsecond=0
)


def plan(api: TestClient, start: datetime, hours: int) -> dict[str, Any]:
    response = api.get(
        "/api/v1/capacity",
        params={"from": start.isoformat(), "to": (start + timedelta(hours=hours)).isoformat()},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_scheduled_meetings_book_servers_and_the_plan_shows_the_peak(
    api: TestClient, rooms: Callable[..., FakeRoom]
) -> None:
    for name in ("r1", "r2"):  # each 4 meetings of up to 50: 200 participants
        rooms(name, max_active_meetings=4, max_users_per_meeting=50)
    nine = TOMORROW_9.isoformat()
    booked = [create(api, start=nine, expected_participants=50) for _ in range(8)]
    # Bookings spread as live load does, though nobody runs or reports these meetings.
    assert [m["booked_server"] for m in booked].count("r1") == 4
    assert all(m["server"] is None and m["status"] == "scheduled" for m in booked)
    assert warnings(api) == []  # exactly full, not over

    result = plan(api, TOMORROW_9 - timedelta(hours=1), 3)
    assert [h["start"] for h in result["hours"]] == [
        (TOMORROW_9 + timedelta(hours=i)).isoformat().replace("+00:00", "Z") for i in (-1, 0, 1)
    ]
    before, peak, after = result["hours"]
    assert before["booked_meetings"] == after["booked_meetings"] == 0
    assert (peak["booked_participants"], peak["booked_meetings"]) == (400, 8)
    assert (peak["available_participants"], peak["available_meetings"]) == (400, 8)
    assert not peak["over"] and result["warnings"] == []
    assert [(s["name"], s["booked_participants"], s["over"]) for s in peak["servers"]] == [
        ("r1", 200, False),
        ("r2", 200, False),
    ]

    # One more at 9:30 goes over: booked on the least overloaded, warned of at once, and
    # the plan says so for both hours it touches.
    extra = create(
        api, start=(TOMORROW_9 + timedelta(minutes=30)).isoformat(), expected_participants=20
    )
    [warning] = warnings(api)
    assert warning["meeting_id"] == extra["id"] and warning["kind"] == "no_room"
    result = plan(api, TOMORROW_9, 2)
    nine_hour, ten_hour = result["hours"]
    assert nine_hour["over"] and nine_hour["booked_participants"] == 420
    assert ten_hour["booked_participants"] == 20 and not ten_hour["over"]
    said = [(w["start"][11:16], w["server"]) for w in result["warnings"]]
    assert said == [("09:00", None), ("09:00", extra["booked_server"])]
    assert "420 of 400 participants, 9 of 8 meetings" in result["warnings"][0]["message"]

    # Moving it to 11:00 moves its booking; deleting a meeting frees its share.
    moved = api.patch(
        f"/api/v1/meetings/{extra['id']}",
        json={"start": (TOMORROW_9 + timedelta(hours=2)).isoformat()},
    )
    assert moved.status_code == 200, moved.text
    result = plan(api, TOMORROW_9, 3)
    assert [h["booked_participants"] for h in result["hours"]] == [400, 0, 20]
    assert result["warnings"] == []
    assert api.delete(f"/api/v1/meetings/{booked[0]['id']}").status_code == 204
    assert plan(api, TOMORROW_9, 1)["hours"][0]["booked_participants"] == 350


def test_a_meeting_starting_now_weighs_the_bookings_of_its_hours(
    api: TestClient, rooms: Callable[..., FakeRoom]
) -> None:
    rooms("r1")
    rooms("r2")
    booked = create(api, start=soon().isoformat(), expected_participants=90)
    other = "r2" if booked["booked_server"] == "r1" else "r1"
    instant = create(api, expected_participants=30)  # starts now, overlapping that booking
    assert instant["server"] == other
    # Once the booked meeting starts, its booking becomes live load on the server it runs on.
    host = start(api, booked["id"])
    assert api.get(f"/api/v1/meetings/{booked['id']}").json()["booked_server"] is None
    assert plan(api, datetime.now(UTC), 2)["hours"][0]["booked_meetings"] == 0
    assert host in ("r1", "r2")


def test_bookings_survive_an_ems_restart(database_url: str, tmp_path: Path) -> None:
    settings = EmsSettings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        cluster_secret=SECRET,
        heartbeat_interval=60,
    )
    admin = {"Authorization": f"Bearer {SECRET}"}
    with TestClient(create_app(settings), headers=admin) as client:
        room = FakeRoom(client, "r1")
        meeting = create(client, start=TOMORROW_9.isoformat(), expected_participants=30)
        assert meeting["booked_server"] == "r1"
        room.close()
    with TestClient(create_app(settings), headers=admin) as client:  # r1 not back yet
        hour = plan(client, TOMORROW_9, 1)["hours"][0]
        assert [(s["name"], s["booked_participants"]) for s in hour["servers"]] == [("r1", 30)]


def test_the_plan_checks_its_query(api: TestClient) -> None:
    def answer(**params: str) -> tuple[int, Any]:
        response = api.get("/api/v1/capacity", params=params)
        return response.status_code, response.json()

    status, body = answer()
    assert status == 200 and len(body["hours"]) == 24 and body["warnings"] == []
    status, body = answer(**{"from": "2026-12-07T09:00:00"})
    assert status == 422 and "time zone" in json.dumps(body)
    status, body = answer(**{"from": "2026-12-07T09:00:00Z", "to": "2026-12-07T08:00:00Z"})
    assert status == 422 and "after from" in json.dumps(body)
    status, body = answer(**{"from": "2026-12-07T09:00:00Z", "to": "2027-03-07T09:00:00Z"})
    assert status == 422 and "31 days" in json.dumps(body)
    status, body = answer(**{"from": "tomorrow"})
    assert status == 422


@pytest.mark.processes
def test_moot_capacity_shows_the_booked_peak_and_checks_its_options(
    database_url: str, tmp_path: Path
) -> None:
    cluster = Cluster(workdir=tmp_path, database_url=database_url)
    try:
        cluster.start_ems()
        limits = {"MOOT_MAX_ACTIVE_MEETINGS": "2", "MOOT_MAX_USERS_PER_MEETING": "50"}
        cluster.start_rooms("room1", "room2", **limits)
        for expected in (50, 50, 50, 50, 30):  # 230 booked at 9:00 where 200 fit
            created = cluster.client.post(
                f"{cluster.ems_url}/api/v1/meetings",
                json={
                    "name": "Monday",
                    "start": TOMORROW_9.isoformat(),
                    "expected_participants": expected,
                },
                timeout=10,
            )
            assert created.status_code == 201, created.text
        shown = cluster.moot(
            "capacity", "--from", (TOMORROW_9 - timedelta(hours=1)).isoformat(), "--hours", "3"
        )
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert "2 of 2 room server(s) take meetings, 200 participants, 4 meetings" in lines[0]
        [nine] = [line for line in lines if line.startswith(f"{TOMORROW_9:%Y-%m-%d} 09:00")]
        assert "230 in 5" in nine and "115%" in nine and "OVER" in nine
        assert len([line for line in lines if line.startswith("20")]) == 1  # only booked hours
        assert any(
            line.startswith("warning") and "cluster: the cluster is booked beyond" in line
            for line in lines
        )
        naive = cluster.moot("capacity", "--from", "2026-12-07T09:00")
        assert naive.returncode == 1 and "time zone offset" in naive.stderr
        nonsense = cluster.moot("capacity", "--from", "monday")
        assert nonsense.returncode == 1 and "not an ISO 8601 time" in nonsense.stderr
    finally:
        cluster.stop()


def test_a_meeting_scheduled_before_any_server_is_booked_when_one_comes(
    api: TestClient, rooms: Callable[..., FakeRoom]
) -> None:
    meeting = create(api, start=TOMORROW_9.isoformat(), expected_participants=30)
    assert meeting["booked_server"] is None  # nobody to book it on, but it is scheduled
    rooms("r1")
    deadline = time.monotonic() + 10
    while api.get(f"/api/v1/meetings/{meeting['id']}").json()["booked_server"] != "r1":
        assert time.monotonic() < deadline, "the meeting was not booked on r1"
        time.sleep(0.05)
    hour = plan(api, TOMORROW_9, 1)["hours"][0]
    assert [(s["name"], s["booked_participants"]) for s in hour["servers"]] == [("r1", 30)]
