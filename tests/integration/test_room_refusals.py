"""A room server that refuses to open a meeting, or never answers, on SQLite and PostgreSQL.

The person creating or attending gets 503 with the reason; nothing is left half-started (no
meeting stored, none marked in progress, no place kept on the server, no meeting open on a
server the EMS gave up on); and the next attempt works. In process, the room servers are
fakes told how to answer (tests/fake_room.py); the last test stops a real room server
between the EMS's command and its answer.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi.testclient import TestClient

from moot.core.text import sentence
from moot.ems.meetings import MeetingService
from moot.harness import Cluster
from tests.fake_room import REFUSAL, Answer, FakeRoom
from tests.fake_room import SECRET as FAKE_SECRET
from tests.integration.conftest import form_fields

OPEN_TIMEOUT = 0.5  # seconds the EMS waits for an answer to open_meeting
TRY_AGAIN = "try again shortly"


def soon() -> datetime:
    """Two minutes from now: a scheduled meeting that may be opened now (early join)."""
    return (datetime.now(UTC) + timedelta(minutes=2)).replace(microsecond=0)


def reason(answer: Answer) -> str:
    why = REFUSAL if answer == "refuse" else "it did not answer in time"
    return f"room server r1 could not open the meeting ({why}); {TRY_AGAIN}"


@pytest.fixture
def ems_settings() -> dict[str, Any]:
    return {
        "secret": FAKE_SECRET,
        "heartbeat_interval": 60,  # the fake need not report to stay online
        "clock_interval": 60,  # the test runs the meeting clock itself
        "open_timeout": OPEN_TIMEOUT,
    }


@pytest.fixture
def room(api: TestClient) -> Iterator[FakeRoom]:
    """One room server taking one meeting at a time: a place the EMS kept by mistake would
    leave it none for the next attempt."""
    fake = FakeRoom(api, "r1", max_active_meetings=1, instant_meetings=1)
    yield fake
    fake.close()


def meeting(api: TestClient, meeting_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/meetings/{meeting_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def sent(room: FakeRoom, kind: str) -> list[str]:
    """The meetings of every command of that kind the room server got, in order."""
    return [c["meeting_id"] for c in list(room.commands) if c["type"] == kind]


@pytest.mark.parametrize("answer", ["refuse", "silent"])
def test_an_instant_meeting_the_room_server_does_not_open_is_not_created(
    api: TestClient, room: FakeRoom, answer: Answer
) -> None:
    room.answers["open_meeting"] = answer
    started = time.monotonic()
    refused = api.post("/api/v1/meetings", json={"name": "Stand-up"})
    assert refused.status_code == 503, refused.text
    assert refused.json()["detail"] == reason(answer)
    if answer == "silent":
        assert time.monotonic() - started >= OPEN_TIMEOUT
    # The form on the home page says the same beside the form, and keeps what was typed.
    fields = {"type": "collaboration", "name": "Retro", "moderator": "Ann"}
    now = {"start_mode": "now", "expected_participants": "3", "hours": "1", "minutes": "0"}
    page = api.post("/meetings/new", data=form_fields(api, **fields, **now))
    assert page.status_code == 503
    assert reason(answer) in page.text and 'value="Retro"' in page.text
    assert api.get("/api/v1/meetings").json()["items"] == []  # nothing half-created
    tried = sent(room, "open_meeting")
    assert len(tried) == 2

    room.answers["open_meeting"] = "ok"
    created = api.post("/api/v1/meetings", json={"name": "Stand-up"})
    # r1 takes one instant meeting: the places the failed attempts took are free again.
    assert created.status_code == 201, created.text
    assert (created.json()["server"], created.json()["status"]) == ("r1", "in_progress")
    assert [m["id"] for m in api.get("/api/v1/meetings").json()["items"]] == [created.json()["id"]]
    # Whatever the EMS sent before the last open_meeting reached the fake before it.
    deadline = time.monotonic() + 5
    while created.json()["id"] not in sent(room, "open_meeting"):
        assert time.monotonic() < deadline, room.commands
        time.sleep(0.02)
    # Unanswered, each open is closed again right behind it, should r1 open it late;
    # refused, there is nothing to close.
    assert sent(room, "close_meeting") == (tried if answer == "silent" else [])


@pytest.mark.parametrize("answer", ["refuse", "silent"])
def test_attending_a_meeting_its_room_server_does_not_open_starts_nothing(
    api: TestClient, room: FakeRoom, answer: Answer
) -> None:
    created = api.post(
        "/api/v1/meetings", json={"name": "Review", "moderator": "Ann", "start": soon().isoformat()}
    )
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    assert created.json()["booked_server"] == "r1"
    room.answers["open_meeting"] = answer

    page = api.get(f"/m/{meeting_id}", params={"name": "Ann"}, follow_redirects=False)
    assert page.status_code == 503
    assert sentence(reason(answer)) in page.text
    # Not started: scheduled, on no server, still booked where it was.
    shown = meeting(api, meeting_id)
    assert (shown["status"], shown["server"], shown["epoch"]) == ("scheduled", None, 0)
    assert shown["booked_server"] == "r1"

    # The meeting clock tries to open it at its start, and fails the same way.
    service: MeetingService = api.app.state.ems.meetings  # type: ignore[attr-defined]
    api.portal.call(service.tick, soon())  # type: ignore[union-attr]
    assert meeting(api, meeting_id)["status"] == "scheduled"
    assert len(sent(room, "open_meeting")) == 2

    room.answers["open_meeting"] = "ok"
    again = api.get(f"/m/{meeting_id}", params={"name": "Ann"}, follow_redirects=False)
    assert again.status_code == 303, again.text
    assert again.headers["location"].startswith("http://r1.test/meeting/")
    shown = meeting(api, meeting_id)
    assert (shown["status"], shown["server"], shown["epoch"]) == ("in_progress", "r1", 1)


# -- a real room server that stops answering ---------------------------------------------


@pytest.mark.processes
def test_a_room_server_that_answers_too_late_keeps_no_meeting_open(tmp_path: Path) -> None:
    """Stopped (SIGSTOP) while the EMS waits for it to open an instant meeting: 503; resumed,
    it reads the open and the close behind it, and hosts only the meetings the EMS knows."""
    cluster = Cluster(workdir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        # Silent for 20 heartbeats before it counts as failed: the test is done well before.
        cluster.start_ems(MOOT_OPEN_TIMEOUT="1", MOOT_FAILURE_AFTER="20")
        room = cluster.start_room("room1")
        with httpx.Client(base_url=cluster.ems_url, headers=cluster.admin, timeout=10) as ems:
            room.popen.send_signal(signal.SIGSTOP)
            try:
                refused = ems.post("/api/v1/meetings", json={"name": "Too late"})
            finally:
                room.popen.send_signal(signal.SIGCONT)
            assert refused.status_code == 503, refused.text
            assert refused.json()["detail"] == (
                f"room server room1 could not open the meeting (it did not answer in time); "
                f"{TRY_AGAIN}"
            )
            assert ems.get("/api/v1/meetings").json()["items"] == []

            created = ems.post("/api/v1/meetings", json={"name": "On time"})
            assert created.status_code == 201, created.text
            location = ems.get(
                f"/m/{created.json()['id']}", params={"name": "Ann"}, follow_redirects=False
            ).headers["location"]

            async def in_the_meeting() -> None:
                socket = location.replace("http://", "ws://").replace("?token", "/ws?token")
                async with websockets.connect(socket) as ws:
                    assert json.loads(await ws.recv())["type"] == "welcome"
                    # A report with Ann in it was made after room1 handled every command
                    # sent before the one that opened her meeting.
                    await asyncio.to_thread(
                        cluster.wait_for,
                        lambda: ems.get("/api/v1/servers/room1").json()["participants"] == 1,
                        "a report of Ann in the meeting",
                    )

            asyncio.run(in_the_meeting())
            assert ems.get("/api/v1/servers/room1").json()["active_meetings"] == 1
    finally:
        cluster.stop()


@pytest.mark.processes
def test_a_room_server_resumed_after_its_meeting_moved_stops_at_once_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """Frozen (SIGSTOP) with a page's chat lines unread, its meeting moved meanwhile, then
    resumed and told to stop at once: the lines it reads wait for a journal that will not
    take them. It exits by itself (before, its page handlers held it until it was killed);
    none of those lines was acknowledged by it, and the page's resend stores each once."""
    from moot.harness.processes import STOP_GRACE

    cluster = Cluster(workdir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    ems = httpx.Client(base_url=cluster.ems_url, timeout=10)
    try:
        cluster.start_ems()
        rooms = dict(zip(("room1", "room2"), cluster.start_rooms("room1", "room2"), strict=True))
        made = ems.post("/api/v1/meetings", json={"name": "Frozen"}, headers=cluster.admin)
        assert made.status_code == 201, made.text
        meeting = made.json()
        victim = rooms[meeting["server"]]
        location = ems.get(
            f"/m/{meeting['id']}", params={"name": "Ann"}, follow_redirects=False
        ).headers["location"]
        token = location.split("token=")[1]
        lines = [f"l{n}" for n in range(5)]

        async def scenario() -> list[str]:
            socket = location.replace("http://", "ws://").replace("?token", "/ws?token")
            acked_by_old: list[str] = []
            async with websockets.connect(socket) as ws:
                assert json.loads(await ws.recv())["type"] == "welcome"
                victim.popen.send_signal(signal.SIGSTOP)
                for line in lines:  # unread until it is resumed
                    await ws.send(json.dumps({"type": "chat", "id": line, "text": line}))
                await asyncio.to_thread(
                    cluster.wait_for,
                    lambda: (
                        ems.get(f"/api/v1/meetings/{meeting['id']}").json()["server"]
                        != meeting["server"]
                    ),
                    "the meeting moved off the frozen server",
                )
                # SIGCONT and SIGTERM at once; killed if not gone after the grace.
                code = await asyncio.to_thread(victim.stop, signal.SIGTERM, STOP_GRACE)
                assert code == 0, f"it did not stop by itself ({code}):\n{victim.output()[-3000:]}"
                try:
                    async with asyncio.timeout(5):
                        async for text in ws:
                            message = json.loads(text)
                            if message["type"] == "ack":
                                acked_by_old.append(message["id"])
                except (TimeoutError, websockets.ConnectionClosed):
                    pass
            # The page rejoins where the meeting runs now and sends its lines again.
            rejoin = await asyncio.to_thread(
                ems.post, f"/api/v1/meetings/{meeting['id']}/rejoin", json={"token": token}
            )
            assert rejoin.status_code == 200, rejoin.text
            async with websockets.connect(rejoin.json()["socket_url"]) as ws:
                assert json.loads(await ws.recv())["type"] == "welcome"
                for line in lines:
                    await ws.send(json.dumps({"type": "chat", "id": line, "text": line}))
                acked: set[str] = set()
                async with asyncio.timeout(10):
                    while acked != set(lines):
                        message = json.loads(await ws.recv())
                        if message["type"] == "ack":
                            acked.add(message["id"])
            again = await asyncio.to_thread(
                ems.post, f"/api/v1/meetings/{meeting['id']}/rejoin", json={"token": token}
            )
            async with websockets.connect(again.json()["socket_url"]) as ws:
                welcome = json.loads(await ws.recv())
            assert [line["id"] for line in welcome["history"]] == lines  # each once, in order
            return acked_by_old

        assert asyncio.run(scenario()) == []  # nothing acknowledged that was not stored
    finally:
        ems.close()
        cluster.stop(check=False)
