"""Several EMS nodes (bus_url nats://) on one PostgreSQL, with real processes: attend
through either node, SIGKILL of the leader, then of a room server: the meeting moves."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from moot.harness import Cluster
from moot.harness.ports import free_port
from tests.conftest import postgres_database
from tests.services import nats_url

pytestmark = [pytest.mark.processes, pytest.mark.postgres]


def servers(client: httpx.Client, ems: str, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    try:
        response = client.get(f"{ems}/api/v1/servers", headers=admin, timeout=3)
    except httpx.HTTPError:
        return {}
    return {s["name"]: s for s in response.json()} if response.status_code == 200 else {}


def attend(client: httpx.Client, ems: str, meeting_id: str, name: str) -> str:
    """Where attend through `ems` sends a person: the room server's address."""
    response = client.get(f"{ems}/m/{meeting_id}", params={"name": name}, timeout=10)
    assert response.status_code in (302, 303), (response.status_code, response.text)
    return response.headers["location"].split("/meeting/")[0]


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    yield from postgres_database(postgres_template)


def test_two_nodes_attend_and_survive_the_leaders_death(tmp_path: Path, postgres_url: str) -> None:
    bus = nats_url()
    if True:
        cluster = Cluster(tmp_path, postgres_url)
        cluster.common |= {"MOOT_BUS_URL": bus, "MOOT_BUS_PREFIX": f"t{secrets.token_hex(6)}"}
        with cluster:
            leader = cluster.start_ems(MOOT_NODE_NAME="node-a")
            port_b = free_port()
            cluster.start_ems_node("ems-b", port_b, MOOT_NODE_NAME="node-b")
            follower = f"http://127.0.0.1:{port_b}"
            cluster.start_rooms("r1", "r2")
            client, admin = cluster.client, cluster.admin
            urls = {name: s["url"] for name, s in servers(client, cluster.ems_url, admin).items()}

            # The follower's monitor sees what the leader sees.
            cluster.wait_for(
                lambda: (
                    {n: s["status"] for n, s in servers(client, follower, admin).items()}
                    == {"r1": "online", "r2": "online"}
                ),
                "the follower to show both room servers online",
            )
            # A meeting opened through the follower (the leader places it), one through
            # the leader; attend through either node goes to the same room server.
            made = [
                client.post(f"{ems}/api/v1/meetings", json={"name": f"m-{i}"}, timeout=15)
                for i, ems in enumerate((follower, cluster.ems_url))
            ]
            assert [r.status_code for r in made] == [201, 201], [r.text for r in made]
            meetings = {r.json()["id"]: r.json()["server"] for r in made}
            assert sorted(meetings.values()) == ["r1", "r2"]  # spread: one placement table
            for meeting_id, server in meetings.items():
                for ems in (cluster.ems_url, follower):
                    assert attend(client, ems, meeting_id, "Alice") == urls[server]

            # The leader dies: the follower takes the lease, the room servers register
            # with it, their meetings still run where they ran (none opened again).
            leader.popen.send_signal(signal.SIGKILL)
            leader.popen.wait()
            log_b = tmp_path / "ems-b.log"
            cluster.wait_for(
                lambda: "leads the cluster now" in log_b.read_text(), "node B to lead", timeout=30
            )
            cluster.wait_for(
                lambda: (
                    {n: s["status"] for n, s in servers(client, follower, admin).items()}
                    == {"r1": "online", "r2": "online"}
                ),
                "the room servers to register with the new leader",
                timeout=30,
            )
            hosted = {n: s["active_meetings"] for n, s in servers(client, follower, admin).items()}
            assert hosted == {"r1": 1, "r2": 1}

            # Then a room server dies: the new leader moves its meeting to the other one.
            victim_meeting, victim = next(iter(meetings.items()))
            survivor = "r2" if victim == "r1" else "r1"
            cluster.rooms[victim].popen.send_signal(signal.SIGKILL)

            def moved() -> bool:
                row = client.get(f"{follower}/api/v1/meetings/{victim_meeting}", timeout=3)
                return row.status_code == 200 and row.json()["server"] == survivor

            cluster.wait_for(moved, "the meeting to move to the surviving room server", timeout=30)
            assert attend(client, follower, victim_meeting, "Bob") == urls[survivor]
            cluster.wait_for(
                lambda: servers(client, follower, admin)[survivor]["active_meetings"] == 2,
                "the survivor to report both meetings",
            )
            cluster.ems = None  # killed above: nothing to stop


def test_several_nodes_on_sqlite_are_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "moot", "serve", "--bus-url", "nats://127.0.0.1:4222"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "MOOT_DATA_DIR": str(tmp_path),
            "MOOT_DATABASE_URL": f"sqlite:///{tmp_path / 'moot.db'}",
            "MOOT_CONFIG": str(tmp_path / "empty.toml"),
        },
    )
    assert done.returncode != 0
    assert "share one PostgreSQL database" in done.stderr
    assert "MOOT_DATABASE_URL to postgresql://" in done.stderr
    assert "Traceback" not in done.stderr
