"""The admin guide's HAProxy example (docs/examples/haproxy.cfg), run as written in front
of two real EMS nodes on one PostgreSQL: a node killed with SIGKILL costs no request."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from moot.harness import Cluster
from moot.harness.ports import free_port
from moot.harness.processes import wait_for
from tests.conftest import postgres_database
from tests.services import missing

pytestmark = [pytest.mark.processes, pytest.mark.postgres]

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "haproxy.cfg"


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    yield from postgres_database(postgres_template)


def test_haproxy_example_sends_nobody_to_a_dead_node(tmp_path: Path, postgres_url: str) -> None:
    haproxy = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    if haproxy is None:
        missing("haproxy is not installed (apt-get install haproxy; make system-deps)")
    with Cluster(tmp_path, postgres_url) as cluster:
        node_a = cluster.start_ems()
        port_b, front = free_port(), free_port()
        cluster.start_ems_node("ems-b", port_b)
        config = (
            EXAMPLE.read_text()
            .replace("127.0.0.1:8080", f"127.0.0.1:{cluster.ems_port}")
            .replace("127.0.0.1:8081", f"127.0.0.1:{port_b}")
            .replace("127.0.0.1:8000", f"127.0.0.1:{front}")
        )
        (tmp_path / "haproxy.cfg").write_text(config)
        checked = subprocess.run(
            [haproxy, "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        command = [haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg")]
        proxy = cluster.procs.spawn("haproxy", command)
        url = f"http://127.0.0.1:{front}"

        def through_proxy() -> int:
            try:
                return httpx.get(f"{url}/readyz", timeout=5).status_code
            except httpx.HTTPError:
                return 0

        wait_for(lambda: through_proxy() == 200, "HAProxy to serve", [proxy])

        node_a.popen.send_signal(signal.SIGKILL)
        node_a.popen.wait()
        cluster.ems = None  # killed: nothing to stop
        answers = []
        with httpx.Client(base_url=url, timeout=5) as client:
            ended = time.monotonic() + 4  # past HAProxy's two failed checks, 1 s apart
            while time.monotonic() < ended:
                answers.append(client.get("/signin").status_code)
        assert set(answers) == {200}, answers
