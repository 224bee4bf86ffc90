"""Real processes whose PostgreSQL or NATS is down: each test runs a PostgreSQL or a
nats-server of its own (moot.harness), so that it may be down, stopped or killed without
touching the machine's shared ones."""

from __future__ import annotations

import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from moot.harness import Cluster
from moot.harness.nats_server import nats_server_binary, nats_server_command
from moot.harness.ports import free_port
from moot.harness.postgres_server import PrivatePostgres, why_not
from tests.conftest import postgres_database
from tests.services import missing

pytestmark = pytest.mark.processes


def readyz(url: str) -> tuple[int, str]:
    """The node's /readyz: (status, text); (0, "") while it does not answer."""
    try:
        answer = httpx.get(url + "/readyz", timeout=5)
    except httpx.HTTPError:
        return 0, ""
    return answer.status_code, answer.text


def serving(url: str) -> bool:
    return readyz(url)[0] == 200


def test_an_ems_whose_database_is_down_says_where_and_serves_once_it_is_up(
    tmp_path: Path,
) -> None:
    problem = why_not()
    if problem:
        missing(f"a private PostgreSQL cannot run here: {problem}")
    port = free_port()  # nothing listens there yet
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    said = f"cannot reach the database at {url}: "
    server: PrivatePostgres | None = None
    try:
        with Cluster(tmp_path, url) as cluster:  # stopping it fails on a traceback in a log
            ems = cluster.spawn(
                "ems",
                ["serve", "--host", "127.0.0.1", "--port", str(cluster.ems_port)],
                {"MOOT_DATABASE_URL": url, "MOOT_CLUSTER_SECRET": cluster.secret},
            )
            cluster.ems = ems
            # Its PostgreSQL is made while the EMS tries (initdb takes seconds).
            server = PrivatePostgres(port, tmp_path / "postgres.log")
            cluster.wait_for(
                lambda: ems.output().count(said) >= 2, "the EMS to say twice it cannot reach", ems
            )
            first = next(line for line in ems.output().splitlines() if said in line)
            assert "Connect call failed" in first and "trying again in" in first, first
            assert not serving(cluster.ems_url)  # nothing to serve with yet

            server.start()
            cluster.wait_for(lambda: serving(cluster.ems_url), "the EMS to serve", ems)
            assert f"reached the database at {url}" in ems.output()
            assert readyz(cluster.ems_url)[1].splitlines() == [
                "ready",
                "store: ok",
                "changes of other nodes: heard",
                "bus: direct (room servers connect to this node)",
            ]

            # PostgreSQL restarted under a serving EMS: /readyz says so (a load balancer
            # sends no one there meanwhile), and the node serves again once it is back.
            server.stop()
            cluster.wait_for(
                lambda: readyz(cluster.ems_url)[0] == 503, "/readyz to say not ready", ems
            )
            facts = readyz(cluster.ems_url)[1].splitlines()
            assert facts[0] == "not ready" and facts[1].startswith("store: unreachable ("), facts
            server.start()
            cluster.wait_for(lambda: serving(cluster.ems_url), "the EMS to serve again", ems)
            # The log says what happened, a line when it went and one when it was back
            # (and no traceback: the cluster's stop checks).
            cluster.wait_for(
                lambda: "the database answers again" in ems.output(), "the log to say so", ems
            )
            assert "the database cannot be reached (" in ems.output()
            assert "listening for other nodes' changes again: caches dropped" in ems.output()
    finally:
        if server is not None:
            server.remove()


def test_a_room_server_whose_nats_is_down_says_where_and_joins_once_it_is_up(
    tmp_path: Path,
) -> None:
    binary = nats_server_binary()
    if binary is None:
        missing("nats-server is not installed (apt-get install nats-server)")
    port = free_port()
    bus = f"nats://127.0.0.1:{port}"
    with Cluster(tmp_path, community_bus=bus) as cluster:
        cluster.start_ems()
        # It registers with the EMS all the same: meetings need no NATS.
        room = cluster.start_room("room1")
        said = f"Connect call failed ('127.0.0.1', {port}) ({bus}); retrying"
        cluster.wait_for(lambda: said in room.output(), "the room server to say it", room)
        assert room.output().count(said) == 1  # once, not once per try (0.2 s apart)

        cluster.procs.spawn("nats", nats_server_command(binary, "127.0.0.1", port, tmp_path / "js"))
        cluster.wait_for(
            lambda: f"community services ready (bus {bus}" in room.output(),
            "the room server's community services",
            room,
        )


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    yield from postgres_database(postgres_template)


def test_ems_nodes_whose_nats_is_down_say_where_and_readyz_tells_their_part(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two EMS nodes (bus_url nats://) on one PostgreSQL: NATS down at start, then up,
    then restarted under them; /readyz says each time what the node can do."""
    binary = nats_server_binary()
    if binary is None:
        missing("nats-server is not installed (apt-get install nats-server)")
    port = free_port()
    bus = f"nats://127.0.0.1:{port}"
    url = postgres_url
    cluster = Cluster(tmp_path, url)
    cluster.common |= {"MOOT_BUS_URL": bus, "MOOT_BUS_PREFIX": f"t{secrets.token_hex(6)}"}
    with cluster:
        node_a = cluster.spawn(
            "ems",
            ["serve", "--host", "127.0.0.1", "--port", str(cluster.ems_port)],
            {"MOOT_DATABASE_URL": url, "MOOT_CLUSTER_SECRET": cluster.secret},
        )
        cluster.ems = node_a
        said = f"cannot reach NATS at {bus}: [Errno 111] Connect call failed"
        cluster.wait_for(lambda: node_a.output().count(said) >= 2, "node A to say it twice", node_a)
        assert "trying again in" in node_a.output()
        assert not serving(cluster.ems_url)

        nats = cluster.procs.spawn(
            "nats", nats_server_command(binary, "127.0.0.1", port, tmp_path / "js")
        )
        cluster.wait_for(lambda: serving(cluster.ems_url), "node A to serve", node_a)
        cluster.wait_for(
            lambda: "this node leads the cluster" in readyz(cluster.ems_url)[1],
            "node A to lead",
            node_a,
        )
        port_b = free_port()
        node_b = cluster.start_ems_node("ems-b", port_b)
        follower = f"http://127.0.0.1:{port_b}"
        cluster.wait_for(
            lambda: "a follower, the leader heard" in readyz(follower)[1],
            "node B to follow",
            node_b,
        )

        # NATS restarts under them: neither is ready meanwhile, both are again after.
        nats.stop()
        for ems in (cluster.ems_url, follower):
            cluster.wait_for(lambda e=ems: readyz(e)[0] == 503, "/readyz to say not ready")
        assert f"bus: NATS at {bus} unreachable" in readyz(cluster.ems_url)[1]
        nats.start()
        for ems in (cluster.ems_url, follower):
            cluster.wait_for(lambda e=ems: serving(e), "the nodes to serve again")
        assert "this node leads the cluster" in readyz(cluster.ems_url)[1]
        assert "a follower, the leader heard" in readyz(follower)[1]


def test_nats_restarted_and_a_follower_killed_under_a_running_meeting(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two EMS nodes, two room servers on a NATS of the test's own: NATS restarts, then the
    follower dies. The meeting stays where it ran (never opened twice), attend through the
    surviving nodes reaches it, and the meeting made through the follower is kept."""
    binary = nats_server_binary()
    if binary is None:
        missing("nats-server is not installed (apt-get install nats-server)")
    port = free_port()
    bus = f"nats://127.0.0.1:{port}"
    cluster = Cluster(tmp_path, postgres_url)
    cluster.common |= {"MOOT_BUS_URL": bus, "MOOT_BUS_PREFIX": f"t{secrets.token_hex(6)}"}
    with cluster:
        nats = cluster.procs.spawn(
            "nats", nats_server_command(binary, "127.0.0.1", port, tmp_path / "js")
        )
        cluster.start_ems(MOOT_NODE_NAME="node-a")
        port_b = free_port()
        node_b = cluster.start_ems_node("ems-b", port_b, MOOT_NODE_NAME="node-b")
        follower = f"http://127.0.0.1:{port_b}"
        cluster.start_rooms("r1", "r2")
        client, admin = cluster.client, cluster.admin
        cluster.wait_for(
            lambda: "a follower, the leader heard" in readyz(follower)[1], "node B to follow"
        )
        made = client.post(f"{follower}/api/v1/meetings", json={"name": "Kept"}, timeout=15)
        assert made.status_code == 201, made.text
        meeting_id, server = made.json()["id"], made.json()["server"]

        def hosted() -> dict[str, int]:
            seen = client.get(f"{cluster.ems_url}/api/v1/servers", headers=admin, timeout=5)
            return {s["name"]: s["active_meetings"] for s in seen.json()}

        def goes_to(ems: str) -> str:
            answer = client.get(f"{ems}/m/{meeting_id}", params={"name": "Ann"}, timeout=10)
            if answer.status_code != 303:
                return f"{answer.status_code}: {answer.text[:200]}"
            return answer.headers["location"].split("/meeting/")[0]

        room_url = goes_to(cluster.ems_url)
        # The follower knows where the meeting runs from the leader's next state (within a
        # second): until then its attend answers 503 "try again shortly".
        cluster.wait_for(lambda: goes_to(follower) == room_url, "attend through B", timeout=5)

        nats.stop()
        cluster.wait_for(lambda: readyz(cluster.ems_url)[0] == 503, "node A to say not ready")
        nats.start()
        for ems in (cluster.ems_url, follower):
            cluster.wait_for(lambda e=ems: serving(e), "the nodes to serve again", timeout=20)
        cluster.wait_for(
            lambda: hosted() == {server: 1, ("r2" if server == "r1" else "r1"): 0},
            "the room servers back, the meeting where it ran and only there",
            timeout=20,
        )
        for ems in (cluster.ems_url, follower):
            cluster.wait_for(lambda e=ems: goes_to(e) == room_url, "attend", timeout=5)
        said = cluster.ems.output() if cluster.ems is not None else ""
        assert f"disconnected from NATS at {bus}" in said and f"NATS at {bus} again" in said

        node_b.popen.send_signal(signal.SIGKILL)
        node_b.popen.wait()
        assert serving(cluster.ems_url)
        assert goes_to(cluster.ems_url) == room_url
        kept = client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting_id}", timeout=5)
        assert kept.status_code == 200 and kept.json()["status"] == "in_progress", kept.text
