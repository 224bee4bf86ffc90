"""Two real EMS nodes on one PostgreSQL: what one changes, the other's caches drop at once
(store/change_feed.py), not after a refresh. The room server is linked to node B, which
serves attend from its memory of the running meeting; node A changes the meeting.

The `direct` bus on purpose: with `nats://` the leader also relays meeting events over
NATS, and this must show the store's own channel, which holds with any bus."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from moot.harness import Cluster
from moot.harness.ports import free_port
from tests.conftest import postgres_database
from tests.integration.conftest import csrf_of

pytestmark = [pytest.mark.processes, pytest.mark.postgres]

# Heard at once: the NOTIFY after node A's commit reaches node B in milliseconds; this is
# only how long a busy machine may take, far below any refresh (the cache had none).
AT_ONCE = 2.0


@pytest.fixture(scope="module")
def two_nodes(
    postgres_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, str]]:
    """Node B (the cluster's EMS, with room server room1) and node A's address, shared by
    the tests of this module (each changes something of its own)."""
    for url in postgres_database(postgres_template):
        cluster = Cluster(tmp_path_factory.mktemp("two-nodes"), url)
        try:
            cluster.start_ems()
            cluster.start_room("room1")
            port = free_port()
            node_a = cluster.spawn(
                "ems-a",
                ["serve", "--host", "127.0.0.1", "--port", str(port)],
                {"MOOT_DATABASE_URL": url, "MOOT_CLUSTER_SECRET": cluster.secret},
            )
            a_url = f"http://127.0.0.1:{port}"
            cluster.wait_for(lambda url=a_url: _ready(url), "node A to be ready", node_a)
            yield cluster, a_url
        finally:
            cluster.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _attend(page: httpx.Client, meeting_id: str, password: str) -> httpx.Response:
    """The attend form as a guest's browser sends it."""
    return page.post(
        f"/m/{meeting_id}",
        data={"name": "Guest", "password": password, "csrf": csrf_of(page)},
        follow_redirects=False,
    )


def test_a_password_changed_on_node_a_holds_on_node_b_at_once(
    two_nodes: tuple[Cluster, str],
) -> None:
    cluster, node_a = two_nodes
    created = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "Shared", "moderator": "Alice", "password": "old"},
        headers=cluster.admin,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    with httpx.Client(base_url=cluster.ems_url, timeout=10) as page:
        first = _attend(page, meeting_id, "old")  # node B now serves it from memory
        assert first.status_code == 303 and "/meeting/" in first.headers["location"]

        changed = httpx.patch(
            f"{node_a}/api/v1/meetings/{meeting_id}",
            json={"password": "new"},
            headers=cluster.admin,
            timeout=10,
        )
        assert changed.status_code == 200, changed.text

        deadline = time.monotonic() + AT_ONCE
        while (old := _attend(page, meeting_id, "old")).status_code == 303:
            assert time.monotonic() < deadline, "node B still lets the old password in"
            time.sleep(0.05)
        assert old.status_code == 403 and "wrong or missing meeting password" in old.text.lower()
        new = _attend(page, meeting_id, "new")
        assert new.status_code == 303 and "/meeting/" in new.headers["location"]

    # Ended on node A: node B refuses at once instead of sending people to a closed room.
    ended = httpx.post(
        f"{node_a}/api/v1/meetings/{meeting_id}/end", headers=cluster.admin, timeout=10
    )
    assert ended.status_code == 200, ended.text
    with httpx.Client(base_url=cluster.ems_url, timeout=10) as page:
        deadline = time.monotonic() + AT_ONCE
        while (late := _attend(page, meeting_id, "new")).status_code == 303:
            assert time.monotonic() < deadline, "node B still sends people to the ended meeting"
            time.sleep(0.05)
        assert late.status_code == 409 and "ended" in late.text


def test_configuration_changed_on_node_a_reaches_node_b_s_room_server_at_once(
    two_nodes: tuple[Cluster, str],
) -> None:
    """Node B reads the new version when node A tells it, not at its 30 s round, and gives
    it to the room server linked to it."""
    cluster, node_a = two_nodes
    changed = httpx.patch(
        f"{node_a}/api/v1/config/cluster",
        json={"based_on": 0, "values": {"welcome_message": "Hello from node A"}},
        headers=cluster.admin,
        timeout=10,
    )
    assert changed.status_code == 200, changed.text

    def room1_runs_it() -> bool:
        seen = cluster.client.get(
            f"{cluster.ems_url}/api/v1/config", headers=cluster.admin, timeout=5
        ).json()
        room1 = next(s for s in seen["servers"] if s["name"] == "room1")
        return bool(
            seen["cluster"]["values"]["welcome_message"] == "Hello from node A"
            and room1["state"] == "applied"
            and room1["applied_version"] == seen["version"]
        )

    deadline = time.monotonic() + AT_ONCE + 3  # and the room server's answer
    while not room1_runs_it():
        assert time.monotonic() < deadline, "node B did not take node A's configuration"
        time.sleep(0.1)
