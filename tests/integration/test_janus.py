"""The room server's Janus: started from the folder Moot writes, driven over its WebSocket
API, restarted when it dies. A real Janus (Debian's), no browser: its API needs no network
namespace (only ICE does)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from moot.room.media.feeds import VIDEOROOM
from moot.room.media.hub import MediaHub
from moot.room.media.janus_client import JanusClient, JanusError
from moot.room.media.supervisor import JanusSettings, JanusSupervisor
from tests.services import missing


async def _until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def janus(tmp_path: Path) -> AsyncIterator[tuple[JanusSupervisor, MediaHub]]:
    if shutil.which("janus") is None:
        missing("Debian's janus is not installed (apt-get install -y janus)")
    hub = MediaHub(lambda: [], lambda: [], lambda: 1500)
    supervisor = JanusSupervisor(
        JanusSettings(mode="auto", folder=tmp_path / "janus", rtp_ports=(46000, 46199)), hub
    )
    running = asyncio.create_task(supervisor.run())
    try:
        await _until(lambda: hub.available, "Janus to be up")
        yield supervisor, hub
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert supervisor.process is None  # stopped with the supervisor


async def test_janus_runs_from_our_folder_and_answers_only_with_the_secret(
    janus: tuple[JanusSupervisor, MediaHub], tmp_path: Path
) -> None:
    _, hub = janus
    folder = tmp_path / "janus"
    assert (folder / "janus.jcfg").stat().st_mode & 0o777 == 0o600
    client = hub.client
    assert client is not None
    # A keepalive is answered (an `ack`), a videoroom handle attaches, and the videoroom
    # refuses to create a room without the admin key only Moot has.
    await client.request({"janus": "keepalive"})
    handle = await client.attach(VIDEOROOM, lambda _event: None)
    with pytest.raises(JanusError):
        await client.message(handle, {"request": "create", "room": 99})
    # Without the api_secret, Janus refuses a session.
    stranger = JanusClient(client.url)
    with pytest.raises(JanusError, match="Unauthorized"):
        await stranger.open()
    await stranger.close()
    # Its admin API (where the bitrate is read) listens on 127.0.0.1 and answers only
    # with the admin_secret Moot generated.
    supervisor, _ = janus
    assert supervisor.admin_url.startswith("ws://127.0.0.1:")
    for secret, answered in (("not-the-secret", False), (supervisor.admin_secret, True)):
        admin = JanusClient(supervisor.admin_url, secret, admin=True)
        await admin.open()
        try:
            info = admin.request(
                {"janus": "handle_info", "session_id": client.session_id}, handle=handle
            )
            if answered:
                assert (await info)["info"]["plugin"] == VIDEOROOM
            else:
                with pytest.raises(JanusError, match="Unauthorized"):
                    await info
        finally:
            await admin.close()


async def test_a_janus_that_dies_is_started_again(
    janus: tuple[JanusSupervisor, MediaHub],
) -> None:
    supervisor, hub = janus
    process = supervisor.process
    assert process is not None
    process.send_signal(signal.SIGKILL)
    await _until(lambda: not hub.available, "the hub to hear that Janus died")
    assert "restart" in hub.reason
    await _until(lambda: hub.available, "Janus to be up again")
    assert supervisor.process is not None and supervisor.process.pid != process.pid
    assert supervisor.restarts == 1
