"""The room server holds its own: a chat flood is cut to each person's rate (with the reason,
nothing of it journaled), its meeting page has a Content-Security-Policy, and a WebSocket
message larger than any a page sends is refused. Real EMS and room-server processes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from moot.harness import Cluster
from tests.conftest import ClusterOptions, module_cluster
from tests.integration.test_meeting_flow import next_of, socket_url

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Cluster]:
    """One EMS and room server for the module: each test makes a meeting of its own, and
    none stops a process or changes the cluster."""
    yield from module_cluster(tmp_path_factory, sqlite_template, ClusterOptions(rooms=("room1",)))


def enter(cluster: Cluster, meeting_id: str, name: str) -> str:
    answer = cluster.client.get(
        f"{cluster.ems_url}/m/{meeting_id}", params={"name": name}, timeout=10
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def test_a_chat_flood_is_cut_to_each_persons_rate(cluster: Cluster) -> None:
    """300 lines at once: a burst of 10 (60 a minute, ten seconds' worth) goes through;
    the others are refused one by one with the reason, and never reach the journal."""
    meeting = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings", json={"name": "Flood"}
    ).json()
    flooder, other = enter(cluster, meeting["id"], "Flo"), enter(cluster, meeting["id"], "Oli")

    async def scenario() -> tuple[set[str], dict[str, str]]:
        acked: set[str] = set()
        refused: dict[str, str] = {}
        async with websockets.connect(socket_url(flooder)) as flo:
            await next_of(flo, "welcome")
            for n in range(300):
                await flo.send(json.dumps({"type": "chat", "id": f"f-{n}", "text": f"spam {n}"}))
            while len(acked) + len(refused) < 300:
                message: dict[str, Any] = json.loads(await asyncio.wait_for(flo.recv(), 10))
                if message["type"] == "ack":
                    acked.add(message["id"])
                elif message["type"] == "error":
                    refused[message["id"]] = message["message"]
            # Another person's lines are not held up by Flo's.
            async with websockets.connect(socket_url(other)) as oli:
                await next_of(oli, "welcome")
                await oli.send(json.dumps({"type": "chat", "id": "o-1", "text": "hello"}))
                assert (await next_of(oli, "ack"))["id"] == "o-1"
        return acked, refused

    acked, refused = asyncio.run(scenario())
    assert 10 <= len(acked) <= 12, len(acked)  # the burst, and what a second refills
    assert len(refused) == 300 - len(acked)
    reason = next(iter(refused.values()))
    assert reason.startswith("you are sending chat lines too fast: at most 60 a minute here")

    async def history() -> list[str]:
        async with websockets.connect(socket_url(enter(cluster, meeting["id"], "Late"))) as late:
            return [line["id"] for line in (await next_of(late, "welcome"))["history"]]

    kept = asyncio.run(history())
    assert set(kept) == acked | {"o-1"}  # journaled and shown: only what was acknowledged


def test_the_meeting_page_has_a_content_security_policy(cluster: Cluster) -> None:
    meeting = cluster.client.post(f"{cluster.ems_url}/api/v1/meetings", json={"name": "CSP"}).json()
    page = httpx.get(enter(cluster, meeting["id"], "Cy"))
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy


def test_an_oversized_websocket_message_is_refused(cluster: Cluster) -> None:
    meeting = cluster.client.post(f"{cluster.ems_url}/api/v1/meetings", json={"name": "Big"}).json()
    page = enter(cluster, meeting["id"], "Bo")

    async def scenario() -> int | None:
        async with websockets.connect(socket_url(page), max_size=None) as bo:
            await next_of(bo, "welcome")
            await bo.send(json.dumps({"type": "chat", "id": "b", "text": "x" * 1_000_000}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(bo.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(scenario()) == 1009  # "message too big"
