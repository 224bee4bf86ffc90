"""The monitoring stream, /admin/monitor/events: server-sent events of the cluster's state.

Real processes (moot.harness): an EMS on SQLite and on PostgreSQL with two room servers,
read with httpx as an EventSource reads them. Who may read it, what a snapshot says, one
server's stream, and that an open stream ends when the EMS stops instead of holding it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from moot.ems.auth.users import add_user
from moot.ems.store.migrate import upgrade
from moot.harness import Cluster

pytestmark = pytest.mark.processes

EVENTS = "/admin/monitor/events"


@pytest.fixture
def monitored(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """An EMS with two room servers, and the local users alice (administrator) and bob."""
    upgrade(database_url)
    asyncio.run(add_user(database_url, "alice", "alice-password", groups=["stadmins"]))
    asyncio.run(add_user(database_url, "bob", "bob-password", display_name="Bob Builder"))
    running = Cluster(workdir=tmp_path, database_url=database_url)
    try:
        running.start_ems()
        running.start_rooms("room1", "room2")
        yield running
    finally:
        running.stop()


def bearer(cluster: Cluster, username: str, password: str) -> dict[str, str]:
    answer = cluster.client.post(
        cluster.ems_url + "/api/v1/auth/token",
        json={"username": username, "password": password},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def read_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) of each event, as an EventSource parses the stream."""
    name, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def test_only_administrators_may_read_the_stream(monitored: Cluster) -> None:
    url = monitored.ems_url + EVENTS
    anonymous = httpx.get(url, timeout=5, follow_redirects=False)
    assert anonymous.status_code == 401
    user = httpx.get(url, timeout=5, headers=bearer(monitored, "bob", "bob-password"))
    assert user.status_code == 403
    assert "stadmins" in user.text  # it says who may
    unknown = httpx.get(url, params={"server": "nope"}, timeout=5, headers=monitored.admin)
    assert unknown.status_code == 404 and "nope" in unknown.text


def test_a_snapshot_arrives_then_another_every_heartbeat(monitored: Cluster) -> None:
    admin = bearer(monitored, "alice", "alice-password")
    started = time.monotonic()
    with httpx.stream("GET", monitored.ems_url + EVENTS, headers=admin, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        events = read_events(response)
        name, first = next(events)
        assert name == "snapshot"
        assert time.monotonic() - started < 3
        assert [s["name"] for s in first["servers"]] == ["room1", "room2"]
        assert {s["status"] for s in first["servers"]} == {"online"}
        assert first["totals"] == {
            "servers": 2,
            "online": 2,
            "logins": 0,
            "community": 0,
            "meetings": 0,
            "participants": 0,
        }
        # Nothing is near a limit (CPU and memory are the test machine's, whatever they are).
        load = ("CPU", "memory")
        assert [a for a in first["alerts"] if not any(w in a["text"] for w in load)] == []
        room1 = first["servers"][0]
        assert room1["max_active_meetings"] == 100 and room1["max_users_per_meeting"] == 500
        assert room1["last_report_at"] is not None
        assert 0 <= room1["cpu_percent"] <= 100 and 0 <= room1["memory_percent"] <= 100
        name, second = next(events)
        assert name == "snapshot" and second["at"] > first["at"]
        assert time.monotonic() - started < 5


def test_one_servers_stream_and_a_capacity_alert(monitored: Cluster) -> None:
    with monitored.http() as http:
        # room2 takes no new meeting and room1 holds one: the meeting makes room1 full.
        drained = http.post(monitored.ems_url + "/api/v1/servers/room2/drain")
        assert drained.status_code == 200, drained.text
        changed = http.patch(
            monitored.ems_url + "/api/v1/servers/room1", json={"max_active_meetings": 1}
        )
        assert changed.status_code == 200, changed.text
        made = http.post(monitored.ems_url + "/api/v1/meetings", json={"name": "Standup"})
        assert made.status_code == 201, made.text
        attended = http.get(
            f"{monitored.ems_url}/m/{made.json()['id']}",
            params={"name": "Alice"},
            follow_redirects=False,
        )
        assert attended.status_code == 303, attended.text
    with httpx.stream(
        "GET",
        monitored.ems_url + EVENTS,
        params={"server": "room1"},
        headers=monitored.admin,
        timeout=10,
    ) as response:
        deadline = time.monotonic() + 10
        for name, snapshot in read_events(response):
            assert name == "snapshot"
            assert snapshot["server"] == "room1"
            assert [s["name"] for s in snapshot["servers"]] == ["room1"]
            servers = snapshot["servers"]
            if servers[0]["meetings"]:
                break
            assert time.monotonic() < deadline, "the meeting never showed on room1"
    room1 = servers[0]
    assert [m["name"] for m in room1["meetings"]] == ["Standup"]
    assert room1["level"] == "critical"
    assert {
        "level": "critical",
        "server": "room1",
        "text": "room1 is at its limit: 1 of 1 meetings",
    } in snapshot["alerts"]


def test_an_open_stream_ends_when_the_ems_stops(monitored: Cluster) -> None:
    """uvicorn waits for open answers before it stops: the stream must end by itself."""
    got: list[str] = []
    ended = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", monitored.ems_url + EVENTS, headers=monitored.admin, timeout=30
        ) as response:
            for name, _ in read_events(response):
                got.append(name)
        ended.set()

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while "snapshot" not in got:
        assert time.monotonic() < deadline, "no snapshot"
        time.sleep(0.05)
    assert monitored.ems is not None
    stopped_at = time.monotonic()
    monitored.ems.popen.send_signal(signal.SIGTERM)
    code = monitored.ems.popen.wait(timeout=15)
    took = time.monotonic() - stopped_at
    assert code in (0, -signal.SIGTERM)  # uvicorn raises the signal again once it has stopped
    assert took < 6, f"the EMS took {took:.1f} s to stop with a stream open"
    assert ended.wait(5), "the stream did not end"
    assert got[-1] == "closing"
