"""Real processes whose PostgreSQL or NATS is down: each test runs a PostgreSQL or a
nats-server of its own (moot.harness), so that it may be down, stopped or killed without
touching the machine's shared ones."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from moot.harness import Cluster
from moot.harness.nats_server import nats_server_binary, nats_server_command
from moot.harness.ports import free_port
from moot.harness.postgres_server import PrivatePostgres, why_not
from tests.services import missing

pytestmark = pytest.mark.processes


def serving(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


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
