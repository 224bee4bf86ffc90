"""Who may join the cluster: the cluster secret and the protocol version decide."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from moot.bus.direct import control_url
from moot.harness import Cluster

pytestmark = pytest.mark.processes


@pytest.fixture
def ems_only(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(workdir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        running.start_ems()
        yield running
    finally:
        running.stop()


def test_wrong_secret_is_refused_with_the_reason_on_both_sides(ems_only: Cluster) -> None:
    room = ems_only.start_room("intruder", secret="not-the-secret", wait=False)
    assert room.popen.wait(timeout=20) == 2
    assert "the EMS refused this room server: wrong cluster secret" in room.output()
    assert ems_only.ems is not None
    ems_only.wait_for(
        lambda: (
            "refused room server intruder" in ems_only.ems.output()  # type: ignore[union-attr]
            and "wrong cluster secret" in ems_only.ems.output()
        ),  # type: ignore[union-attr]
        "the EMS to log the refusal",
        timeout=5,
    )
    assert ems_only.server_status("intruder") is None


def test_other_protocol_major_version_is_refused(ems_only: Cluster) -> None:
    register = {
        "type": "register",
        "name": "future",
        "url": "http://127.0.0.1:1",
        "protocol_version": "2.0",
        "secret": ems_only.secret,
        "limits": {"max_active_meetings": 1, "max_users_per_meeting": 1},
    }

    async def scenario() -> dict[str, object]:
        async with websockets.connect(control_url(ems_only.ems_url)) as ws:
            await ws.send(json.dumps(register))
            reply: dict[str, object] = json.loads(await ws.recv())
            return reply

    reply = asyncio.run(scenario())
    assert reply["type"] == "refused"
    assert "protocol version 2.0 is not compatible" in str(reply["reason"])
    assert ems_only.ems is not None
    ems_only.wait_for(
        lambda: "not compatible" in ems_only.ems.output(),  # type: ignore[union-attr]
        "the EMS to log the refusal",
        timeout=5,
    )


def test_room_server_reconnects_after_an_ems_restart(ems_only: Cluster) -> None:
    ems_only.start_room("room1")
    assert ems_only.ems is not None
    ems_only.ems.stop()
    ems_only.processes.remove(ems_only.ems)
    ems_only.start_ems()
    ems_only.wait_for(lambda: ems_only.server_status("room1") == "online", "room1 to return")
