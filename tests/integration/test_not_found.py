"""Unknown addresses: a page with a way back for browsers, JSON for programs and the API."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from moot.protocol.control import ServerLimits
from moot.room.agent import Agent
from moot.room.app import create_app as create_room_app
from moot.room.host import MeetingHost

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
EMS_URL = "http://meet.example.com"


def test_a_browser_on_an_unknown_page_of_the_ems_gets_a_page_back(api: TestClient) -> None:
    answer = api.get("/no/such/page", headers=BROWSER)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Page not found" in answer.text
    assert '<a href="/">Back to the Meeting Center</a>' in answer.text


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/no-such-thing", BROWSER),  # an API path, even from a browser
        ("/no/such/page", {"Accept": "application/json"}),
        ("/no/such/page", {"Accept": "*/*"}),  # curl, scripts
    ],
)
def test_programs_and_the_api_keep_json_on_the_ems(
    api: TestClient, path: str, headers: dict[str, str]
) -> None:
    answer = api.get(path, headers=headers)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found"}


def test_a_missing_meeting_through_the_api_stays_json_for_a_browser(api: TestClient) -> None:
    answer = api.get("/api/v1/meetings/nope", headers=BROWSER)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "meeting nope not found"}


@pytest.fixture
def room() -> TestClient:
    agent = Agent(
        name="room1",
        url="http://room1.example.com",
        secret="secret",
        limits=ServerLimits(max_active_meetings=1, max_users_per_meeting=1),
        host=MeetingHost(),
        dial=lambda: asyncio.sleep(0),  # type: ignore[arg-type,return-value]
    )
    return TestClient(create_room_app(agent, EMS_URL))


def test_a_browser_on_an_unknown_page_of_a_room_server_gets_a_way_to_the_ems(
    room: TestClient,
) -> None:
    answer = room.get("/no/such/page", headers=BROWSER)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Page not found" in answer.text
    assert f'<a href="{EMS_URL}/">Go to the Meeting Center</a>' in answer.text


@pytest.mark.parametrize("accept", ["application/json", "*/*"])
def test_programs_keep_json_on_a_room_server(room: TestClient, accept: str) -> None:
    answer = room.get("/no/such/page", headers={"Accept": accept})
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found"}
