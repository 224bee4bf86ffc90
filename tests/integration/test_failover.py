"""Failure detection and failover with real processes: SIGKILL, SIGSTOP, shutdown, EMS restart."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import pytest
import websockets

from moot.harness import Cluster, Process

pytestmark = pytest.mark.processes


def create(cluster: Cluster, count: int) -> list[dict[str, Any]]:
    return [
        cluster.client.post(
            f"{cluster.ems_url}/api/v1/meetings", json={"name": f"m{i}"}, timeout=10
        ).json()
        for i in range(count)
    ]


def meeting(cluster: Cluster, meeting_id: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster.client.get(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}"
    ).json()
    return result


def join_token(cluster: Cluster, meeting_id: str, name: str) -> str:
    location = cluster.client.get(
        f"{cluster.ems_url}/m/{meeting_id}", params={"name": name}
    ).headers["location"]
    return location.split("token=")[1]


def moved_off(cluster: Cluster, victim: str, ids: list[str]) -> bool:
    return all(meeting(cluster, i)["server"] not in (victim, None) for i in ids)


def test_sigkill_moves_every_meeting_and_pages_can_rejoin(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, rooms = three
    meetings = create(cluster, 6)
    victim = meetings[0]["server"]
    on_victim = [m["id"] for m in meetings if m["server"] == victim]
    assert len(on_victim) == 2  # six meetings spread 2/2/2
    old_token = join_token(cluster, on_victim[0], "Alice")
    room_before = meeting(cluster, on_victim[0])["server"]
    before_url = cluster.client.get(
        f"{cluster.ems_url}/api/v1/servers/{room_before}", headers=cluster.admin
    ).json()["url"]

    async def chat_before() -> None:
        url = before_url.replace("http://", "ws://") + (
            f"/meeting/{on_victim[0]}/ws?token={old_token}"
        )
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            for i in range(3):
                await ws.send(json.dumps({"type": "chat", "id": f"pre-{i}", "text": f"line {i}"}))
            acked = set()
            while len(acked) < 3:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message["type"] == "ack":
                    acked.add(message["id"])

    asyncio.run(chat_before())  # acknowledged, so stored off the room server

    killed_at = time.monotonic()
    rooms[victim].popen.send_signal(signal.SIGKILL)
    cluster.wait_for(
        lambda: moved_off(cluster, victim, on_victim), "the meetings to move", timeout=5
    )
    elapsed = time.monotonic() - killed_at
    assert elapsed < 5
    for meeting_id in on_victim:
        detail = meeting(cluster, meeting_id)
        assert detail["status"] == "in_progress" and detail["epoch"] == 2
    others = [m for m in meetings if m["server"] != victim]
    assert all(meeting(cluster, m["id"])["epoch"] == 1 for m in others)  # untouched
    assert cluster.server_status(victim) == "failed"
    events = cluster.client.get(
        f"{cluster.ems_url}/api/v1/servers/{victim}/events", headers=cluster.admin
    ).json()
    assert [e["state"] for e in events[:2]] == ["failed", "suspect"]
    # The same, as an administrator sees it from the command line.
    listed = cluster.moot("servers", "list")
    assert any(line.split()[:2] == [victim, "failed"] for line in listed.stdout.splitlines())
    history = cluster.moot("servers", "events", victim, "--limit", "2").stdout.splitlines()
    assert history[0].split() == ["AT", "STATE", "REASON"]
    assert "failed" in history[1] and "did not reconnect within" in history[1]
    assert "suspect" in history[2] and "control connection closed" in history[2]
    assert cluster.moot("servers", "events", "nope").returncode == 1

    # The meeting page's rejoin: the old token gets a new one for the new host.
    answer = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings/{on_victim[0]}/rejoin", json={"token": old_token}
    )
    assert answer.status_code == 200, answer.text
    target = answer.json()
    new_host = meeting(cluster, on_victim[0])["server"]
    room_url = cluster.client.get(
        f"{cluster.ems_url}/api/v1/servers/{new_host}", headers=cluster.admin
    ).json()["url"]
    assert target["url"].startswith(room_url)

    async def chat_there() -> None:
        async with websockets.connect(target["socket_url"]) as ws:
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome" and welcome["you"]["user"] == "Alice"
            # The whole chat history came along, rebuilt from the journal.
            assert [line["text"] for line in welcome["history"]] == ["line 0", "line 1", "line 2"]
            # A resend of an event acknowledged before the crash is not applied twice.
            await ws.send(json.dumps({"type": "chat", "id": "pre-1", "text": "line 1"}))
            await ws.send(json.dumps({"type": "chat", "id": "a1", "text": "still here"}))
            seen = []
            while ("ack", "a1") not in seen:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                seen.append((message["type"], message.get("id")))
            assert ("ack", "pre-1") in seen
            assert ("chat", "pre-1") not in seen and ("chat", "a1") in seen

    asyncio.run(chat_there())
    forged = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings/{on_victim[0]}/rejoin",
        json={"token": old_token[:-4] + "AAAA"},
    )
    assert forged.status_code == 403


def test_sigstop_fails_after_silence_and_sigcont_is_fenced(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, rooms = three
    meetings = create(cluster, 3)
    victim = meetings[0]["server"]
    on_victim = [m["id"] for m in meetings if m["server"] == victim]
    page = cluster.client.get(
        f"{cluster.ems_url}/m/{on_victim[0]}", params={"name": "Bob"}
    ).headers["location"]
    socket_url = page.replace("http://", "ws://").replace("?token", "/ws?token")

    async def scenario() -> None:
        async with websockets.connect(socket_url, ping_interval=None) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            stopped_at = time.monotonic()
            rooms[victim].popen.send_signal(signal.SIGSTOP)
            await asyncio.to_thread(
                cluster.wait_for,
                lambda: moved_off(cluster, victim, on_victim),
                "the meetings to move off the hung server",
                None,
                8,
            )
            assert time.monotonic() - stopped_at < 8
            assert cluster.server_status(victim) == "failed"
            rooms[victim].popen.send_signal(signal.SIGCONT)
            # Back, it re-registers, is told its meeting moved, and tells its clients so.
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            while message["type"] != "moved":
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))

    asyncio.run(scenario())
    cluster.wait_for(lambda: cluster.server_status(victim) == "online", "the victim to return")
    view = cluster.client.get(f"{cluster.ems_url}/api/v1/cluster", headers=cluster.admin).json()
    victim_view = next(s for s in view["servers"] if s["name"] == victim)
    cluster.wait_for(
        lambda: (
            next(
                s
                for s in cluster.client.get(
                    f"{cluster.ems_url}/api/v1/cluster", headers=cluster.admin
                ).json()["servers"]
                if s["name"] == victim
            )["active_meetings"]
            == 0
        ),
        "the fenced server to report no meeting",
        timeout=5,
    )
    assert victim_view["name"] == victim
    for meeting_id in on_victim:
        assert meeting(cluster, meeting_id)["server"] != victim


def test_announced_shutdown_moves_meetings_at_once(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, rooms = three
    meetings = create(cluster, 3)
    victim = meetings[0]["server"]
    on_victim = [m["id"] for m in meetings if m["server"] == victim]
    started = time.monotonic()
    rooms[victim].stop(signal.SIGTERM)
    cluster.wait_for(
        lambda: moved_off(cluster, victim, on_victim), "the meetings to move", timeout=5
    )
    assert time.monotonic() - started < 3
    assert cluster.server_status(victim) == "offline"


def test_ems_restart_keeps_every_meeting_where_it_was(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, _ = three
    meetings = create(cluster, 4)
    before = {m["id"]: (m["server"], m["epoch"]) for m in meetings}
    assert cluster.ems is not None
    cluster.ems.stop(signal.SIGKILL)
    cluster.processes.remove(cluster.ems)
    cluster.start_ems()
    cluster.wait_for(
        lambda: all(cluster.server_status(n) == "online" for n in ("room1", "room2", "room3")),
        "the room servers to reconnect",
    )
    # All back: the detector judged them since, and failed none (a failure is counted as
    # it is decided), so nothing moves.
    cluster.detector_ran()
    assert cluster.metric("moot_failovers_total") == 0
    after = {m: (meeting(cluster, m)["server"], meeting(cluster, m)["epoch"]) for m in before}
    assert after == before
    assert all(meeting(cluster, m)["status"] == "in_progress" for m in before)
