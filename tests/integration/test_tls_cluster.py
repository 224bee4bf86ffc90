"""A cluster over TLS, with real processes on 127.0.0.1: HTTPS for browsers, wss:// for the
control channel verified against the cluster CA, room servers proving their names with
client certificates; and everything that must be refused, refused and logged."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from moot.bus.direct import control_url
from moot.harness import Cluster
from moot.infra.certs import ClusterCerts, client_ssl_context, init_cluster

pytestmark = pytest.mark.processes

HOSTS = ["127.0.0.1", "localhost"]


@pytest.fixture
def certs(tmp_path: Path) -> ClusterCerts:
    return init_cluster(tmp_path / "certs", hosts=HOSTS, servers=["room1", "room2", "solo"])


@pytest.fixture
def foreign(tmp_path: Path) -> ClusterCerts:
    """Another cluster: the same names and hosts, only the CA differs."""
    return init_cluster(tmp_path / "foreign", hosts=HOSTS, servers=["room1", "impostor"])


@pytest.fixture
def ems(tmp_path: Path, certs: ClusterCerts) -> Iterator[Cluster]:
    """An EMS on HTTPS that asks for client certificates of the cluster CA (optional)."""
    running = Cluster(
        workdir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", tls=certs
    )
    try:
        running.start_ems()
        yield running
    finally:
        running.stop()


def logged(cluster: Cluster, process_name: str, *texts: str, timeout: float = 10) -> None:
    """Wait until the process's log holds every text (it is written as things happen)."""
    process = next(p for p in cluster.processes if p.name == process_name)
    cluster.wait_for(
        lambda: all(text in process.output() for text in texts),
        f"{process_name} to log {texts}",
        timeout=timeout,
    )


def stays_out(cluster: Cluster, name: str, seconds: float = 1.5) -> None:
    """The EMS does not list the server for a while (after its refusal was logged)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert cluster.server_status(name) is None
        time.sleep(0.1)


async def next_of(ws: Any, kind: str, within: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        message: dict[str, Any] = json.loads(raw)
        if message["type"] == kind:
            return message


def test_https_cluster_registers_attends_and_chats(ems: Cluster, certs: ClusterCerts) -> None:
    ems.start_rooms("room1", "room2")
    with ems.http() as client:
        servers = {s["name"]: s for s in client.get(f"{ems.ems_url}/api/v1/servers").json()}
        assert {name: s["status"] for name, s in servers.items()} == {
            "room1": "online",
            "room2": "online",
        }
        for server in servers.values():
            assert server["url"].startswith("https://127.0.0.1:")
            assert client.get(server["url"] + "/readyz").text == "ready"

        created = client.post(
            f"{ems.ems_url}/api/v1/meetings",
            json={"name": "Over TLS", "moderator": "Alice", "expected_participants": 2},
        )
        assert created.status_code == 201, created.text
        meeting = created.json()
        assert meeting["join_url"] == f"https://127.0.0.1:{ems.ems_port}/m/{meeting['id']}"

        attend = client.get(f"{ems.ems_url}/m/{meeting['id']}", params={"name": "Alice"})
        assert attend.status_code == 303, attend.text
        page_url = attend.headers["location"]
        room_url = servers[meeting["server"]]["url"]
        assert page_url.startswith(f"{room_url}/meeting/{meeting['id']}?token=")
        page = client.get(page_url)
        assert page.status_code == 200
        assert "Over TLS" in page.text

    # The meeting's socket over wss://, and a chat line journalled on the EMS through the
    # TLS control channel before it is acknowledged.
    parts = urlsplit(page_url)
    socket_url = f"wss://{parts.netloc}{parts.path}/ws?{parts.query}"

    async def chat() -> None:
        async with websockets.connect(socket_url, ssl=client_ssl_context(certs.ca.cert)) as ws:
            assert (await next_of(ws, "welcome"))["you"]["user"] == "Alice"
            await ws.send(json.dumps({"type": "chat", "id": "a-1", "text": "secure hello"}))
            seen: dict[str, dict[str, Any]] = {}
            while len(seen) < 2:  # the line shown to everyone and the sender's ack, any order
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message["type"] in ("ack", "chat"):
                    seen[message["type"]] = message
            assert seen["ack"]["id"] == "a-1"
            assert seen["chat"]["text"] == "secure hello"

    asyncio.run(chat())
    # The admin commands check the EMS against MOOT_TLS_CA (Cluster.moot sets it).
    listed = ems.moot("servers", "list")
    assert listed.returncode == 0, listed.stderr
    assert "room1" in listed.stdout and "room2" in listed.stdout
    logged(ems, "ems", "room server room1 registered from 127.0.0.1:", "by client certificate")
    # Only HTTPS: the EMS does not answer plain HTTP on its port.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{ems.ems_port}/readyz", timeout=5)


def test_certificate_from_another_ca_is_refused_even_with_the_secret(
    ems: Cluster, foreign: ClusterCerts
) -> None:
    impostor = foreign.servers["impostor"]
    room = ems.start_room(
        "impostor",
        wait=False,
        MOOT_ROOM_CLIENT_CERT=str(impostor.cert),
        MOOT_ROOM_CLIENT_KEY=str(impostor.key),
    )
    logged(
        ems,
        "ems",
        "refused a connection from 127.0.0.1:",
        "in the TLS handshake: its client certificate is not signed by the cluster CA",
    )
    logged(ems, "impostor", "the EMS refused this room server's client certificate")
    stays_out(ems, "impostor")
    assert room.alive()  # it keeps trying, as for any connection failure


def test_valid_client_certificate_without_secret_joins(ems: Cluster) -> None:
    ems.start_room("solo", secret="")
    logged(ems, "ems", "room server solo registered from 127.0.0.1:", "by client certificate")


def test_secret_without_client_certificate_joins(ems: Cluster) -> None:
    ems.start_room("room2", MOOT_ROOM_CLIENT_CERT="", MOOT_ROOM_CLIENT_KEY="")
    logged(ems, "ems", "room server room2 registered from", "with the cluster secret")


def test_wrong_secret_without_certificate_is_refused(ems: Cluster) -> None:
    room = ems.start_room(
        "room2", secret="wrong", wait=False, MOOT_ROOM_CLIENT_CERT="", MOOT_ROOM_CLIENT_KEY=""
    )
    assert room.popen.wait(timeout=20) == 2
    assert "the EMS refused this room server: wrong cluster secret" in room.output()
    logged(ems, "ems", "refused room server room2 from 127.0.0.1:", "wrong cluster secret")
    assert ems.server_status("room2") is None


def test_certificate_of_another_room_server_is_refused(ems: Cluster, certs: ClusterCerts) -> None:
    """room1's certificate proves room1: it does not let a server in as room2."""
    room1 = certs.servers["room1"]
    room = ems.start_room(
        "room2",
        secret="",
        wait=False,
        MOOT_ROOM_CLIENT_CERT=str(room1.cert),
        MOOT_ROOM_CLIENT_KEY=str(room1.key),
    )
    assert room.popen.wait(timeout=20) == 2
    reason = "no cluster secret, and its client certificate is for 'room1', not 'room2'"
    assert f"the EMS refused this room server: {reason}" in room.output()
    logged(ems, "ems", "refused room server room2 from 127.0.0.1:", reason)
    assert ems.server_status("room2") is None


def test_neither_secret_nor_certificate_is_refused(ems: Cluster, certs: ClusterCerts) -> None:
    # `moot room` itself will not start without either...
    room = ems.start_room(
        "room2", secret="", wait=False, MOOT_ROOM_CLIENT_CERT="", MOOT_ROOM_CLIENT_KEY=""
    )
    assert room.popen.wait(timeout=20) == 1
    assert "error: set MOOT_CLUSTER_SECRET" in room.output()
    assert "or give the room server a client certificate" in room.output()

    # ...and the EMS refuses a client that tries anyway, with the reason, and logs it.
    register = {
        "type": "register",
        "name": "nobody",
        "url": "https://127.0.0.1:1",
        "protocol_version": "1.0",
        "secret": "",
        "limits": {"max_active_meetings": 1, "max_users_per_meeting": 1},
    }

    async def scenario() -> dict[str, object]:
        context = client_ssl_context(certs.ca.cert)
        async with websockets.connect(control_url(ems.ems_url), ssl=context) as ws:
            await ws.send(json.dumps(register))
            reply: dict[str, object] = json.loads(await ws.recv())
            return reply

    reply = asyncio.run(scenario())
    assert reply == {"type": "refused", "reason": "no cluster secret and no client certificate"}
    logged(
        ems,
        "ems",
        "refused room server nobody from 127.0.0.1:",
        "no cluster secret and no client certificate",
    )
    assert ems.server_status("nobody") is None


def test_room_server_refuses_an_ems_it_cannot_verify(ems: Cluster, foreign: ClusterCerts) -> None:
    room = ems.start_room("room1", wait=False, MOOT_TLS_CA=str(foreign.ca.cert))
    logged(
        ems,
        "room1",
        "cannot connect to the EMS: wss://127.0.0.1:",
        "the EMS's certificate is not trusted",
        "tls_ca (MOOT_TLS_CA) must name the CA that signed it",
    )
    stays_out(ems, "room1")
    assert room.alive()  # retries: the fix may be on the EMS's side


# --- bad settings: a clear error naming the setting and the file, exit 1 ---------------


def moot(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moot", *args],
        env={**os.environ, "MOOT_DATA_DIR": str(tmp_path / "data"), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_tls_settings_stop_the_ems_and_the_room_server(
    tmp_path: Path, certs: ClusterCerts
) -> None:
    ems_pem, ems_key, ca = str(certs.ems.cert), str(certs.ems.key), str(certs.ca.cert)
    missing = str(tmp_path / "certs" / "missing.pem")
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (
            ["serve", "--port", "1"],
            {"MOOT_TLS_CERT": ems_pem},
            "error: tls_cert (MOOT_TLS_CERT) is set but tls_key (MOOT_TLS_KEY) is not",
        ),
        (
            ["serve", "--port", "1"],
            {"MOOT_TLS_CERT": missing, "MOOT_TLS_KEY": ems_key},
            f"error: tls_cert (MOOT_TLS_CERT) names {missing}, which is not a file",
        ),
        (
            ["serve", "--port", "1"],
            {"MOOT_TLS_CERT": ems_pem, "MOOT_TLS_KEY": ems_key, "MOOT_TLS_CLIENT_CA": ems_key},
            f"error: tls_client_ca (MOOT_TLS_CLIENT_CA): cannot read CA certificates from "
            f"{ems_key}",
        ),
        (
            ["serve", "--port", "1"],
            {"MOOT_TLS_CERT": ems_pem, "MOOT_TLS_KEY": str(certs.servers["room1"].key)},
            "error: tls_cert (MOOT_TLS_CERT), tls_key (MOOT_TLS_KEY): cannot use certificate",
        ),
        (
            ["room", "--name", "r", "--ems-url", "https://127.0.0.1:1"],
            {"MOOT_CLUSTER_SECRET": "s", "MOOT_TLS_CA": missing},
            f"error: tls_ca (MOOT_TLS_CA) names {missing}, which is not a file",
        ),
        (
            ["room", "--name", "r", "--ems-url", "http://127.0.0.1:1"],
            {"MOOT_CLUSTER_SECRET": "s", "MOOT_TLS_CA": ca},
            "error: tls_ca (MOOT_TLS_CA) is set but ems_url (http://127.0.0.1:1) is not https://",
        ),
        (
            ["room", "--name", "r"],
            {"MOOT_CLUSTER_SECRET": "s", "MOOT_ROOM_TLS_KEY": ems_key},
            "error: room_tls_key (MOOT_ROOM_TLS_KEY) is set but room_tls_cert",
        ),
    ]
    # Each refusal is a whole process start: run them side by side.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda case: moot(tmp_path, *case[0], **case[1]), cases))
    for (args, env, expected), result in zip(cases, results, strict=True):
        output = result.stdout + result.stderr
        assert result.returncode == 1, (args, env, output)
        assert expected in output, (args, env, output)
        assert "Traceback" not in output
