"""Prometheus /metrics and JSON logs, with real processes: an EMS and two room servers.

What an operator's dashboard would show after meetings start, people chat and a room
server is killed; and with MOOT_LOG_FORMAT=json, every line the processes write is JSON.
"""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from moot.harness import Cluster
from tests.conftest import ClusterOptions

JSON_LOGS = {"MOOT_LOG_FORMAT": "json"}


@pytest.fixture
def cluster_url(sqlite_url: str) -> str:
    return sqlite_url  # what is tested here does not depend on the store


@pytest.fixture
def cluster_options() -> ClusterOptions:
    """Room servers room1 and room2, all the processes logging JSON lines."""
    return ClusterOptions(ems_env=JSON_LOGS, room_env=JSON_LOGS)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a /metrics page, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no {name}{labels} in {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


def server_url(cluster: Cluster, name: str) -> str:
    answer = cluster.client.get(f"{cluster.ems_url}/api/v1/servers/{name}", headers=cluster.admin)
    url: str = answer.json()["url"]
    return url


def create(cluster: Cluster, name: str, **fields: Any) -> dict[str, Any]:
    response = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": name, **fields}, timeout=10
    )
    assert response.status_code == 201, response.text
    meeting: dict[str, Any] = response.json()
    return meeting


def join_token(cluster: Cluster, meeting_id: str, name: str) -> str:
    location = cluster.client.get(
        f"{cluster.ems_url}/m/{meeting_id}", params={"name": name}
    ).headers["location"]
    return location.split("token=")[1]


def eventually(cluster: Cluster, url: str, what: str, check: Any) -> Samples:
    """Scrape until `check(samples)` holds (status reports come every second)."""
    found: list[Samples] = []

    def holds() -> bool:
        found[:] = [scrape(url)]
        return bool(check(found[0]))

    cluster.wait_for(holds, what, timeout=10)
    return found[0]


def test_apps_in_one_process_each_serve_their_own_metrics(tmp_path: Path) -> None:
    """Tests build many apps in one process: no "Duplicated timeseries", each its own view."""
    from fastapi.testclient import TestClient

    from moot.ems.app import create_app as create_ems
    from moot.infra.settings import EmsSettings, RoomSettings
    from moot.room.app import create_app as create_room
    from moot.room.server import build_agent

    def ems(name: str) -> TestClient:
        settings = EmsSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db",
            data_dir=tmp_path / name,
            cluster_secret="secret",
        )
        return TestClient(create_ems(settings))

    with ems("one") as one, ems("two") as two:
        before = parse(one.get("/metrics").text)
        assert value(before, "moot_room_servers", state="online") == 0
        assert value(before, "moot_meetings", status="in_progress") == 0
        assert value(parse(two.get("/metrics").text), "moot_info", version="0.1.0") == 1
    rooms = [
        create_room(build_agent(RoomSettings(room_name=n, cluster_secret="s")), "http://x")
        for n in ("r1", "r2")
    ]
    for room in rooms:
        samples = parse(TestClient(room).get("/metrics").text)
        assert value(samples, "moot_room_control_connected") == 0  # no EMS here
        assert value(samples, "moot_room_meetings") == 0


@pytest.mark.processes
def test_metrics_show_the_cluster_as_it_runs_and_fails(cluster: Cluster) -> None:
    meetings = [create(cluster, f"m{i}") for i in range(4)]  # instant: placed 2 and 2
    start = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    create(cluster, "later", start=start)  # scheduled: booked, not placed
    for meeting in meetings:
        cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting['id']}").raise_for_status()
    chatted = meetings[0]
    host = chatted["server"]
    other = next(m["server"] for m in meetings if m["server"] != host)
    room_url = server_url(cluster, host)

    ems = scrape(cluster.ems_url)
    assert value(ems, "moot_info", version="0.1.0") == 1
    assert value(ems, "moot_room_servers", state="online") == 2
    for state in ("suspect", "failed", "offline", "draining"):
        assert value(ems, "moot_room_servers", state=state) == 0
    assert value(ems, "moot_meetings", status="in_progress") == 4
    assert value(ems, "moot_meetings", status="scheduled") == 1
    assert value(ems, "moot_placements_total", outcome="placed") == 4
    assert value(ems, "moot_placements_total", outcome="refused") == 0
    assert value(ems, "moot_failovers_total") == 0
    # By route template, never the path: one series for every meeting id.
    route = "/api/v1/meetings/{meeting_id}"
    assert value(ems, "moot_http_requests_total", method="GET", route=route, status="200") == 4
    created = value(
        ems, "moot_http_requests_total", method="POST", route="/api/v1/meetings", status="201"
    )
    assert created == 5
    assert value(ems, "moot_http_request_seconds_count", route=route) == 4
    assert not any(chatted["id"] in str(labels) for _, labels in ems)
    assert value(ems, "process_resident_memory_bytes") > 0  # the default collectors stay

    token = join_token(cluster, chatted["id"], "Alice")

    async def attend_and_chat() -> tuple[Samples, Samples]:
        url = room_url.replace("http://", "ws://") + f"/meeting/{chatted['id']}/ws?token={token}"
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            for i in range(3):
                await ws.send(json.dumps({"type": "chat", "id": f"c{i}", "text": f"line {i}"}))
            acked: set[str] = set()
            while len(acked) < 3:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message["type"] == "ack":
                    acked.add(message["id"])
            # Scraped while Alice is still in: the EMS knows her from the next report.
            room = await asyncio.to_thread(scrape, room_url)
            seen = await asyncio.to_thread(
                eventually,
                cluster,
                cluster.ems_url,
                "the EMS to count Alice",
                lambda s: value(s, "moot_participants") == 1,
            )
            return room, seen

    room, ems = asyncio.run(attend_and_chat())
    assert value(room, "moot_info", version="0.1.0") == 1
    assert value(room, "moot_room_meetings") == 2
    assert value(room, "moot_room_connections") == 1
    assert value(room, "moot_room_participants") == 1
    assert value(room, "moot_room_control_connected") == 1
    assert value(room, "moot_room_chat_lines_total") == 3
    assert value(room, "moot_room_journal_seconds_count") == 3
    assert value(room, "moot_room_journal_seconds_bucket", le="+Inf") == 3
    assert "moot_placements_total" not in {name for name, _ in room}  # EMS metrics stay there
    assert value(ems, "moot_logins") == 1
    assert value(ems, "moot_journal_events_total") == 3
    assert 1 <= value(ems, "moot_journal_batch_seconds_count") <= 3
    assert value(ems, "moot_journal_ack_errors_total", reason="fenced") == 0
    assert "moot_room_meetings" not in {name for name, _ in ems}  # nor room metrics here

    # A room server dies: its two meetings move to the other one.
    [victim] = [p for p in cluster.processes if p.name == host]
    victim.popen.send_signal(signal.SIGKILL)
    ems = eventually(
        cluster,
        cluster.ems_url,
        "the failover to be counted",
        lambda s: value(s, "moot_meetings_moved_total", reason="failover") == 2,
    )
    assert value(ems, "moot_failovers_total") == 1
    assert value(ems, "moot_room_servers", state="failed") == 1
    assert value(ems, "moot_room_servers", state="online") == 1
    assert value(ems, "moot_meetings", status="in_progress") == 4
    assert value(ems, "moot_placements_total", outcome="placed") == 6
    assert value(ems, "moot_participants") == 0  # Alice left before the crash
    survivor = eventually(
        cluster,
        server_url(cluster, other),
        "the survivor to host all four",
        lambda s: value(s, "moot_room_meetings") == 4,
    )
    assert value(survivor, "moot_room_chat_lines_total") == 0


@pytest.mark.processes
def test_json_logs_are_one_object_per_line(cluster: Cluster) -> None:
    meeting = create(cluster, "logged")
    cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting['id']}").raise_for_status()
    [victim] = [p for p in cluster.processes if p.name == meeting["server"]]
    victim.popen.send_signal(signal.SIGKILL)  # warnings: suspect, failed, moved
    cluster.wait_for(
        lambda: cluster.server_status(victim.name) == "failed", "the room server to fail"
    )
    cluster.stop()  # every process has written its last line (and none a traceback)

    for process in cluster.processes:
        entries = []
        for line in process.output().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                pytest.fail(f"{process.name} wrote a line that is not JSON: {line!r}")
            assert isinstance(entry, dict), line
            assert {"ts", "level", "logger", "message"} <= set(entry), line
            datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
            entries.append(entry)
        loggers = {e["logger"] for e in entries}
        assert "uvicorn.error" in loggers, process.name  # uvicorn's own lines are JSON too
        assert any(e["message"].startswith("Uvicorn running on") for e in entries)
    ems = [json.loads(line) for line in cluster.processes[0].output().splitlines()]
    messages = [e["message"] for e in ems]
    assert any(m.startswith("Meeting Center ready at") for m in messages)
    assert any(
        e["level"] == "WARNING" and f"room server {victim.name}: online -> suspect" in e["message"]
        for e in ems
    )
