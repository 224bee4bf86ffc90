"""A room server whose report is late behind its other messages is busy, not silent.

A room server sends its reports on the same control link as its events; a burst of events
(a meeting of 500 ending) can hold a report up behind them. The EMS's failure detector
counts any message as a sign of life: only a server that says nothing at all for
`failure_after` heartbeats is failed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from moot.bus.direct import CONTROL_PATH
from moot.ems.app import create_app
from moot.infra.settings import EmsSettings
from moot.protocol import PROTOCOL_VERSION
from moot.protocol.control import CommandResult, Register, ServerLimits

# failure_after: 3 heartbeats, 1.5 s: short enough for a quick test, long enough that a
# loaded machine's pauses (the test client's own requests included) do not look like silence.
HEARTBEAT = 0.5


@pytest.fixture
def ems(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = EmsSettings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        cluster_secret="secret",
        heartbeat_interval=HEARTBEAT,
    )
    with TestClient(create_app(settings), headers={"Authorization": "Bearer secret"}) as client:
        yield client


def status_of(ems: TestClient, name: str) -> str:
    return str(ems.get(f"/api/v1/servers/{name}").json()["status"])


def test_a_room_server_that_sends_events_but_no_report_is_not_failed(ems: TestClient) -> None:
    with ems.websocket_connect(CONTROL_PATH) as room:
        room.send_text(
            Register(
                name="busy",
                url="http://busy.test",
                protocol_version=PROTOCOL_VERSION,
                secret="secret",
                limits=ServerLimits(max_active_meetings=1, max_users_per_meeting=500),
            ).model_dump_json()
        )
        assert '"registered"' in room.receive_text()
        assert status_of(ems, "busy") == "online"

        # No report for 4.5 s (three times failure_after), but other messages.
        until = time.monotonic() + 4.5
        number = 0
        while time.monotonic() < until:
            number += 1
            room.send_text(CommandResult(request_id=f"late-{number}", ok=True).model_dump_json())
            time.sleep(HEARTBEAT / 5)
            if number % 5 == 0:
                assert status_of(ems, "busy") == "online"

        # Silence: failed within a few heartbeats.
        deadline = time.monotonic() + 10 * HEARTBEAT + 2
        while status_of(ems, "busy") != "failed":
            assert time.monotonic() < deadline, "a silent room server was not failed"
            time.sleep(0.05)
