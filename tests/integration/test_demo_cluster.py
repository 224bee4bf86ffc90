"""`moot demo --cluster`: two EMS nodes and three room servers on the PostgreSQL given and
a NATS the demo starts; either node serves, one leads; nothing left after Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from moot.harness.nats_server import nats_server_binary
from moot.harness.ports import free_block
from tests.conftest import postgres_database
from tests.services import missing

pytestmark = [pytest.mark.processes, pytest.mark.postgres]

SAID = "Meeting Center on either EMS node: "


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    yield from postgres_database(postgres_template)


def test_cluster_demo_runs_two_nodes_and_three_room_servers(
    tmp_path: Path, postgres_url: str
) -> None:
    if nats_server_binary() is None:
        missing("nats-server is not installed (apt-get install nats-server)")
    port = free_block(5)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOOT_")}
    where = ["--port", str(port), "--data-dir", str(tmp_path / "moot-data")]
    demo = subprocess.Popen(
        [sys.executable, "-m", "moot", "demo", "--cluster", *where, "--database-url", postgres_url],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(SAID in line for line in lines):
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
        said = next((line for line in lines if SAID in line), None)
        assert said is not None, "".join(lines)
        nodes = [u.strip().rstrip("/") for u in said.removeprefix(SAID).split(",")]
        assert nodes == [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]

        secret = (tmp_path / "moot-data" / "cluster-secret").read_text().strip()
        admin = {"Authorization": f"Bearer {secret}"}
        parts = []
        for node in nodes:
            ready = httpx.get(f"{node}/readyz", timeout=5)
            assert ready.status_code == 200, ready.text
            parts.append(ready.text)
        assert sum("this node leads the cluster" in text for text in parts) == 1, parts
        deadline = time.monotonic() + 20
        while True:  # the follower mirrors the leader's room servers
            seen = httpx.get(f"{nodes[1]}/api/v1/servers", headers=admin, timeout=5).json()
            states = sorted((s["name"], s["status"]) for s in seen)
            if states == [("room1", "online"), ("room2", "online"), ("room3", "online")]:
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.2)

        children = psutil.Process(demo.pid).children(recursive=True)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()
