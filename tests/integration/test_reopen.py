"""A room server that restarts before the EMS gives up on it gets its meetings back, opened
again at a new epoch with their chat, and a recorded one records on in a new segment."""

from __future__ import annotations

import asyncio
import signal

import pytest

from moot.harness import Cluster
from tests.conftest import ClusterOptions
from tests.integration.test_recording import api, say, socket_url

pytestmark = pytest.mark.processes


@pytest.fixture
def cluster_options() -> ClusterOptions:
    # One room server, and time enough to restart it before its meetings would move.
    return ClusterOptions(rooms=("room1",), ems_env={"MOOT_RECONNECT_GRACE": "30"})


def test_a_restarted_room_server_reopens_its_meetings_at_a_new_epoch(cluster: Cluster) -> None:
    created = api(cluster, "POST", "/meetings", json={"name": "Standup", "record": True})
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    assert created.json()["server"] == "room1"
    before = [("a1", "yesterday"), ("a2", "today")]
    assert asyncio.run(say(socket_url(cluster, meeting_id, "Alice"), before)) == []

    cluster.rooms["room1"].popen.send_signal(signal.SIGKILL)
    cluster.rooms["room1"].popen.wait(10)
    cluster.start_room("room1")
    cluster.wait_for(
        lambda: (
            api(cluster, "GET", f"/meetings/{meeting_id}/recording").json()["segments"][-1]["epoch"]
            == 2
        ),
        "the meeting to be opened again on room1",
        timeout=15,
    )
    meeting = api(cluster, "GET", f"/meetings/{meeting_id}").json()
    assert (meeting["status"], meeting["server"]) == ("in_progress", "room1")
    # The new epoch's room has the chat so far, and takes more.
    history = asyncio.run(say(socket_url(cluster, meeting_id, "Bob"), [("b1", "blockers?")]))
    assert history == [text for _, text in before]

    assert api(cluster, "POST", f"/meetings/{meeting_id}/end").status_code == 200
    first, second = api(cluster, "GET", f"/meetings/{meeting_id}/recording").json()["segments"]
    assert (first["server"], first["epoch"], first["end_reason"]) == (
        "room1",
        1,
        "room1 restarted",
    )
    assert (second["server"], second["epoch"], second["end_reason"]) == (
        "room1",
        2,
        "meeting ended",
    )
