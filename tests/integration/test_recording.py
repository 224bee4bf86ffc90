"""Recording across a failover: one segment per room server, played back as one recording."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import httpx
import pytest
import websockets

from moot.harness import Cluster
from tests.dates import monday_weeks_ahead

pytestmark = pytest.mark.processes


def api(cluster: Cluster, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The API as an administrator (ending a meeting is for its moderator or them)."""
    return httpx.request(
        method, f"{cluster.ems_url}/api/v1{path}", timeout=10, headers=cluster.admin, **kwargs
    )


def socket_url(cluster: Cluster, meeting_id: str, name: str) -> str:
    page = cluster.client.get(f"{cluster.ems_url}/m/{meeting_id}", params={"name": name}).headers[
        "location"
    ]
    return str(page.replace("http://", "ws://").replace("?token", "/ws?token"))


async def say(url: str, lines: list[tuple[str, str]]) -> list[str]:
    """Enter, send each (id, text), wait for every acknowledgement; returns the history seen."""
    async with websockets.connect(url, open_timeout=5) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert welcome["type"] == "welcome"
        for event_id, text in lines:
            await ws.send(json.dumps({"type": "chat", "id": event_id, "text": text}))
        acked: set[str] = set()
        while len(acked) < len(lines):
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message["type"] == "ack":
                acked.add(message["id"])
        return [line["text"] for line in welcome["history"]]


def test_recording_goes_on_after_failover_as_a_new_segment(cluster: Cluster) -> None:
    created = api(cluster, "POST", "/meetings", json={"name": "Board", "record": True})
    assert created.status_code == 201, created.text
    meeting = created.json()
    first_host = meeting["server"]
    other = {"room1", "room2"} - {first_host}
    # Whether it is recorded is settled before it starts: everyone in it was told.
    refused = api(cluster, "PATCH", f"/meetings/{meeting['id']}", json={"record": False})
    assert refused.status_code == 422
    assert "before it starts" in refused.json()["detail"][0]["msg"]

    before = [("a1", "agenda"), ("a2", "<b>budget</b>"), ("a3", "questions?")]
    assert asyncio.run(say(socket_url(cluster, meeting["id"], "Alice"), before)) == []
    recording = api(cluster, "GET", f"/meetings/{meeting['id']}/recording").json()
    assert recording["complete"] is False  # readable while it records
    assert [s["server"] for s in recording["segments"]] == [first_host]

    victim = next(p for p in cluster.processes if p.name == first_host)
    victim.popen.send_signal(signal.SIGKILL)
    cluster.wait_for(
        lambda: api(cluster, "GET", f"/meetings/{meeting['id']}").json()["server"] in other,
        "the meeting to move",
        timeout=10,
    )
    after = [("b1", "we lost a server"), ("b2", "carry on")]
    history = asyncio.run(say(socket_url(cluster, meeting["id"], "Bob"), after))
    assert history == [text for _, text in before]
    assert api(cluster, "POST", f"/meetings/{meeting['id']}/end").status_code == 200

    answer = api(cluster, "GET", f"/meetings/{meeting['id']}/recording")
    assert answer.status_code == 200, answer.text
    recording = answer.json()
    assert recording["complete"] is True
    first, second = recording["segments"]
    assert (first["number"], first["server"], first["epoch"]) == (1, first_host, 1)
    assert (second["number"], second["server"], second["epoch"]) == (2, other.pop(), 2)
    assert first["end_reason"] == f"moved off {first_host} (failed)"
    assert second["end_reason"] == "meeting ended"
    assert first["ended_at"] is not None and first["ended_at"] <= second["started_at"]
    # Played in order, each line once, in the segment of the server that carried it.
    chat = [
        (s["number"], e["user"], e["text"])
        for s in recording["segments"]
        for e in s["events"]
        if e["kind"] == "chat"
    ]
    assert chat == [(1, "Alice", t) for _, t in before] + [(2, "Bob", t) for _, t in after]
    offsets = [e["offset_seconds"] for s in recording["segments"] for e in s["events"]]
    assert offsets == sorted(offsets) and offsets[0] >= 0
    assert second["offset_seconds"] > 0
    assert recording["duration_seconds"] >= offsets[-1]
    assert ("joined", "Bob") in [(e["kind"], e["user"]) for e in second["events"]]

    # The playback page shows every segment and every line, HTML as text.
    page = httpx.get(recording["playback_url"], timeout=10)
    assert page.status_code == 200
    assert "&lt;b&gt;budget&lt;/b&gt;" in page.text and "<b>budget</b>" not in page.text
    assert page.text.count('class="segment"') == 2

    listed = api(cluster, "GET", "/meetings", params={"status": "recorded"}).json()["items"]
    assert [m["id"] for m in listed] == [meeting["id"]]


def test_no_recording_where_none_was_made(cluster: Cluster) -> None:
    plain = api(cluster, "POST", "/meetings", json={"name": "Stand-up"}).json()
    answer = api(cluster, "GET", f"/meetings/{plain['id']}/recording")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "this meeting is not recorded"

    later = api(
        cluster,
        "POST",
        "/meetings",
        json={
            "name": "Review",
            "record": True,
            "start": f"{monday_weeks_ahead(4).isoformat()}T09:00:00Z",
        },
    ).json()
    answer = api(cluster, "GET", f"/meetings/{later['id']}/recording")
    assert answer.status_code == 404
    assert "has not started" in answer.json()["detail"]
    page = cluster.client.get(f"{cluster.ems_url}/recordings/{later['id']}", timeout=10)
    assert page.status_code == 404 and "has not started" in page.text
    assert cluster.client.get(f"{cluster.ems_url}/recordings/nope", timeout=10).status_code == 404

    api(cluster, "POST", f"/meetings/{plain['id']}/end")
    assert api(cluster, "GET", "/meetings", params={"status": "recorded"}).json()["items"] == []
