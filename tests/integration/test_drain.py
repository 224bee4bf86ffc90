"""Drain with real processes: evacuate, run to the end, deadline, forced removal; the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
from typing import Any

import pytest
import websockets

from moot.harness import Cluster, Process

pytestmark = pytest.mark.processes


def moot(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return cluster.moot(*args)


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


def server(cluster: Cluster, name: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster.client.get(
        f"{cluster.ems_url}/api/v1/servers/{name}", headers=cluster.admin
    ).json()
    return result


def spread(cluster: Cluster) -> tuple[str, list[str], list[dict[str, Any]]]:
    """Six meetings, two on each server: the first one's host, its meetings, the others."""
    meetings = create(cluster, 6)
    victim = meetings[0]["server"]
    on_victim = [m["id"] for m in meetings if m["server"] == victim]
    assert len(on_victim) == 2
    cluster.wait_for(  # `active_meetings` counts what the server reported
        lambda: server(cluster, victim)["active_meetings"] == 2, "a report of the meetings"
    )
    return victim, on_victim, [m for m in meetings if m["server"] != victim]


def moved_off(cluster: Cluster, victim: str, ids: list[str]) -> bool:
    return all(meeting(cluster, i)["server"] not in (victim, None) for i in ids)


def assert_moved_not_lost(
    cluster: Cluster, victim: str, ids: list[str], others: list[dict[str, Any]]
) -> None:
    for meeting_id in ids:
        detail = meeting(cluster, meeting_id)
        assert detail["status"] == "in_progress", detail
        assert detail["epoch"] == 2 and detail["server"] not in (victim, None), detail
    for other in others:  # untouched
        detail = meeting(cluster, other["id"])
        assert (detail["server"], detail["epoch"], detail["status"]) == (
            other["server"],
            1,
            "in_progress",
        )


def socket_of(cluster: Cluster, meeting_id: str, name: str) -> tuple[str, str]:
    """The meeting WebSocket a browser would open, and its join token."""
    page = cluster.client.get(f"{cluster.ems_url}/m/{meeting_id}", params={"name": name}).headers[
        "location"
    ]
    return page.replace("http://", "ws://").replace("?token", "/ws?token"), page.split("token=")[1]


async def wait_moved(ws: websockets.ClientConnection) -> None:
    """Until the room server says the meeting moved; never that it ended."""
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == "moved":
            return
        assert message["type"] != "ended", message  # a drain never ends a meeting


def test_drain_evacuate_moves_every_meeting_and_clients_are_told(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, _ = three
    victim, on_victim, others = spread(cluster)
    socket_url, token = socket_of(cluster, on_victim[0], "Bob")

    async def scenario() -> subprocess.CompletedProcess[str]:
        async with websockets.connect(socket_url, ping_interval=None) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            started = time.monotonic()
            done = await asyncio.to_thread(moot, cluster, "servers", "drain", victim, "--evacuate")
            async with asyncio.timeout(10):
                await wait_moved(ws)
            assert time.monotonic() - started < 10
            return done

    done = asyncio.run(scenario())
    assert done.returncode == 0, done.stderr
    assert f"room server {victim} is drained; 0 meeting(s) still running" in done.stdout
    assert "deadline" in done.stdout and "moved to other servers" in done.stdout
    assert_moved_not_lost(cluster, victim, on_victim, others)
    shown = server(cluster, victim)
    assert shown["status"] == "drained" and shown["draining"] is True
    assert shown["drain_deadline"] is not None

    # The page's rejoin leads to the new host, where the meeting runs on.
    answer = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings/{on_victim[0]}/rejoin", json={"token": token}
    )
    assert answer.status_code == 200, answer.text
    new_host = server(cluster, meeting(cluster, on_victim[0])["server"])
    assert answer.json()["url"].startswith(new_host["url"])

    async def chat_there() -> None:
        async with websockets.connect(answer.json()["socket_url"]) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"

    asyncio.run(chat_there())
    # New meetings go elsewhere; a drained server goes without force.
    assert all(m["server"] != victim for m in create(cluster, 3))
    removed = moot(cluster, "servers", "remove", victim)
    assert removed.returncode == 0, removed.stderr
    assert (
        cluster.client.get(
            f"{cluster.ems_url}/api/v1/servers/{victim}", headers=cluster.admin
        ).status_code
        == 404
    )


def test_drain_keeps_meetings_until_they_end(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, _ = three
    victim, on_victim, _others = spread(cluster)
    done = moot(cluster, "servers", "drain", victim)
    assert done.returncode == 0, done.stderr
    assert f"room server {victim} is draining; 2 meeting(s) still running" in done.stdout
    assert re.search(r"deadline \S+ \(in (3h59m|4h00m)\)", done.stdout), done.stdout
    shown = server(cluster, victim)
    assert shown["status"] == "draining"
    cluster.detector_ran()  # it has judged the drain's deadline since: not yet passed
    assert cluster.metric("moot_meetings_moved_total", reason="evacuated") == 0
    for meeting_id in on_victim:
        assert (meeting(cluster, meeting_id)["server"], meeting(cluster, meeting_id)["epoch"]) == (
            victim,
            1,
        )
    assert all(m["server"] != victim for m in create(cluster, 3))

    refused = moot(cluster, "servers", "remove", victim)
    assert refused.returncode == 1
    assert "still hosts 2 meeting(s)" in refused.stderr
    assert "drain" in refused.stderr and "--force" in refused.stderr

    for meeting_id in on_victim:
        ended = cluster.client.post(
            f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/end", headers=cluster.admin
        )
        assert ended.status_code == 200
    cluster.wait_for(lambda: server(cluster, victim)["status"] == "drained", "the drain to end")
    assert moot(cluster, "servers", "remove", victim).returncode == 0


def test_drain_deadline_moves_remaining_meetings_when_it_passes(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, _ = three
    victim, on_victim, others = spread(cluster)
    socket_url, _ = socket_of(cluster, on_victim[1], "Carol")

    async def scenario() -> float:
        async with websockets.connect(socket_url, ping_interval=None) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            started = time.monotonic()
            done = await asyncio.to_thread(
                moot, cluster, "servers", "drain", victim, "--deadline", "3s"
            )
            assert done.returncode == 0, done.stderr
            assert "is draining; 2 meeting(s) still running; deadline" in done.stdout
            assert all(meeting(cluster, i)["server"] == victim for i in on_victim)
            async with asyncio.timeout(15):
                await wait_moved(ws)
            return time.monotonic() - started

    took = asyncio.run(scenario())
    assert 2.5 < took < 10
    # Carol's meeting moved; the other one is moved after it, one at a time.
    cluster.wait_for(lambda: moved_off(cluster, victim, on_victim), "both moved", timeout=10)
    assert_moved_not_lost(cluster, victim, on_victim, others)
    assert server(cluster, victim)["status"] == "drained"


def test_drain_deadline_survives_an_ems_restart(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, _ = three
    victim, on_victim, others = spread(cluster)
    answer = cluster.client.post(
        f"{cluster.ems_url}/api/v1/servers/{victim}/drain",
        json={"deadline_seconds": 4},
        headers=cluster.admin,
    )
    assert answer.status_code == 200 and answer.json()["status"] == "draining"
    assert cluster.ems is not None
    cluster.ems.stop(signal.SIGKILL)
    cluster.processes.remove(cluster.ems)
    cluster.start_ems()
    assert server(cluster, victim)["drain_deadline"] == answer.json()["drain_deadline"]
    cluster.wait_for(
        lambda: moved_off(cluster, victim, on_victim), "the deadline to move them", timeout=20
    )
    assert_moved_not_lost(cluster, victim, on_victim, others)


def test_remove_refused_while_busy_and_forced_moves_meetings_first(
    three: tuple[Cluster, dict[str, Process]],
) -> None:
    cluster, rooms = three
    victim, on_victim, others = spread(cluster)
    refused = cluster.client.delete(
        f"{cluster.ems_url}/api/v1/servers/{victim}", headers=cluster.admin
    )
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "still hosts 2 meeting(s)" in detail and "drain" in detail and "force" in detail
    assert server(cluster, victim)["status"] == "online"  # a refusal changes nothing

    socket_url, _ = socket_of(cluster, on_victim[0], "Dan")

    async def scenario() -> subprocess.CompletedProcess[str]:
        async with websockets.connect(socket_url, ping_interval=None) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
            done = await asyncio.to_thread(moot, cluster, "servers", "remove", victim, "--force")
            async with asyncio.timeout(10):
                await wait_moved(ws)
            return done

    done = asyncio.run(scenario())
    assert done.returncode == 0, done.stderr
    assert f"removed room server {victim}" in done.stdout
    assert (
        cluster.client.get(
            f"{cluster.ems_url}/api/v1/servers/{victim}", headers=cluster.admin
        ).status_code
        == 404
    )
    assert_moved_not_lost(cluster, victim, on_victim, others)
    # Removed, it is sent away and its process stops.
    rooms[victim].popen.wait(timeout=10)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the CLI's checks only
def test_drain_cli_checks_its_options(three: tuple[Cluster, dict[str, Process]]) -> None:
    cluster, _ = three
    bad = moot(cluster, "servers", "drain", "room1", "--deadline", "soon")
    assert bad.returncode == 1 and "not a duration" in bad.stderr
    both = moot(cluster, "servers", "drain", "room1", "--deadline", "1h", "--evacuate")
    assert both.returncode == 1 and "--evacuate" in both.stderr
    too_long = moot(cluster, "servers", "drain", "room1", "--deadline", "8d")
    assert too_long.returncode == 1 and "deadline_seconds" in too_long.stderr
    missing = moot(cluster, "servers", "drain", "nope")
    assert missing.returncode == 1 and "404" in missing.stderr
    assert server(cluster, "room1")["draining"] is False
