"""`moot demo`: three processes up, the address printed, nothing left after a stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import pytest
import websockets

from moot.harness.ports import free_block

pytestmark = pytest.mark.processes


def start_demo(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moot",
            "demo",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "moot-data"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )


def stop(demo: subprocess.Popen[str]) -> None:
    if demo.poll() is None:
        demo.kill()
        demo.wait()
    if demo.stdout is not None:
        demo.stdout.close()


def wait_for_address(demo: subprocess.Popen[str]) -> tuple[str, list[str]]:
    assert demo.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Meeting Center: "):
            return line.removeprefix("Meeting Center: ").strip(), lines
    raise AssertionError("demo printed no address:\n" + "".join(lines))


def without_janus(children: list[psutil.Process]) -> list[psutil.Process]:
    """The demo's own processes: a room server's Janus is its child, counted with it."""
    return [child for child in children if child.name() != "janus"]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_demo_starts_its_processes_and_stops_them_all(tmp_path: Path, stop_signal: int) -> None:
    port = free_block(3)
    demo = start_demo(tmp_path, port)
    try:
        address, _ = wait_for_address(demo)
        assert address == f"http://127.0.0.1:{port}/"
        secret = (tmp_path / "moot-data" / "cluster-secret").read_text().strip()
        admin = {"Authorization": f"Bearer {secret}"}
        servers = httpx.get(address + "api/v1/servers", headers=admin).json()
        assert sorted((s["name"], s["status"]) for s in servers) == [
            ("room1", "online"),
            ("room2", "online"),
        ]
        children = psutil.Process(demo.pid).children(recursive=True)
        # The EMS, two room servers, and the NATS server of community services (and each
        # room server's Janus, where Janus is installed: they must stop too).
        assert len(without_janus(children)) == 4
        assert "nats-server" in [child.name() for child in children]
        assert (tmp_path / "moot-data" / "moot.db").exists()
        demo.send_signal(stop_signal)
        assert demo.wait(timeout=20) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []
    finally:
        stop(demo)


def test_demo_children_die_with_a_killed_demo(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, free_block(3))
    try:
        wait_for_address(demo)
        children = psutil.Process(demo.pid).children(recursive=True)
        demo.kill()
        demo.wait()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    finally:
        stop(demo)


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    port = free_block(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        demo = start_demo(tmp_path, port)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 1
    assert f"error: port {port + 1} on 127.0.0.1 is in use" in output
    assert "--port" in output
    assert "Traceback" not in output


class Output:
    """The demo's output, read as it comes (a thread), so a test can wait for a line."""

    def __init__(self, demo: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._stream = demo.stdout
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._stream is not None
        for line in self._stream:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"the demo never said {text!r}:\n" + "".join(self.lines))


def room_process(demo: subprocess.Popen[str], name: str) -> psutil.Process:
    for child in psutil.Process(demo.pid).children():
        if f"--name {name}" in " ".join(child.cmdline()):
            return child
    raise AssertionError(f"no process for {name}")


class MeetingPage:
    """What the meeting page does over its WebSocket: join, chat, rejoin when it is lost."""

    def __init__(self, ems_url: str, meeting_id: str, attend_location: str) -> None:
        self.ems_url, self.meeting_id = ems_url, meeting_id
        page = urlsplit(attend_location)
        self.token = parse_qs(page.query)["token"][0]
        self.socket_url = f"ws://{page.netloc}{page.path}/ws?{page.query}&roster=changes"

    async def join(self) -> tuple[Any, dict[str, Any]]:
        ws = await websockets.connect(self.socket_url)
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert welcome["type"] == "welcome", welcome
        return ws, welcome

    async def rejoin(self, lost_netloc: str) -> tuple[Any, dict[str, Any]]:
        """Ask the EMS where the meeting runs now, until it names another server."""
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=self.ems_url) as client:
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                answer = await client.post(
                    f"/api/v1/meetings/{self.meeting_id}/rejoin", json={"token": self.token}
                )
                if answer.status_code != 200:
                    assert answer.status_code == 503, answer.text  # moving: try again
                    continue
                target = answer.json()
                self.token = target["token"]
                if urlsplit(target["socket_url"]).netloc == lost_netloc:
                    continue
                self.socket_url = target["socket_url"] + "&roster=changes"
                return await self.join()
        raise AssertionError("the meeting never came back on another room server")


def test_demo_keeps_running_when_a_room_server_dies(tmp_path: Path) -> None:
    """SIGKILL the room server of a meeting: its page moves to the other one, the demo
    says so and starts the dead one again (back online, empty); Ctrl-C still stops all."""
    port = free_block(3)
    demo = start_demo(tmp_path, port)
    try:
        address, _ = wait_for_address(demo)
        output = Output(demo)
        ems_url = address.rstrip("/")
        secret = (tmp_path / "moot-data" / "cluster-secret").read_text().strip()
        admin = {"Authorization": f"Bearer {secret}"}
        meeting = httpx.post(
            f"{ems_url}/api/v1/meetings",
            json={"name": "Survives", "moderator": "Ann"},
            headers=admin,
        ).json()
        host = meeting["server"]
        other = ({"room1", "room2"} - {host}).pop()
        attend = httpx.get(f"{ems_url}/m/{meeting['id']}", params={"name": "Ann"})
        assert attend.status_code == 303
        page = MeetingPage(ems_url, meeting["id"], attend.headers["location"])

        async def scenario() -> dict[str, Any]:
            ws, _ = await page.join()
            await ws.send(json.dumps({"type": "chat", "id": "a-1", "text": "before"}))
            while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "ack":
                pass
            lost = urlsplit(page.socket_url).netloc
            room_process(demo, host).kill()
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            moved, welcome = await page.rejoin(lost)
            await moved.close()
            return welcome

        welcome = asyncio.run(scenario())
        assert [line["text"] for line in welcome["history"]] == ["before"]
        assert "killed by SIGKILL" in output.wait_for(f"room server {host} stopped")
        output.wait_for(f"The EMS marked {host} failed")
        output.wait_for(f"room server {host} is back online")
        servers = {
            s["name"]: s for s in httpx.get(f"{ems_url}/api/v1/servers", headers=admin).json()
        }
        assert servers[host]["status"] == "online"
        assert servers[host]["active_meetings"] == 0  # back empty: fenced
        detail = httpx.get(f"{ems_url}/api/v1/meetings/{meeting['id']}", headers=admin).json()
        assert detail["server"] == other

        children = psutil.Process(demo.pid).children(recursive=True)
        # The EMS, the survivor, the restarted one, nats-server (and their Janus).
        assert len(without_janus(children)) == 4
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=20) == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []
    finally:
        stop(demo)


def test_demo_stops_everything_when_the_ems_dies(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, free_block(3))
    try:
        wait_for_address(demo)
        children = psutil.Process(demo.pid).children()
        ems = next(c for c in children if " serve " in " ".join(c.cmdline()))
        ems.kill()
        output, _ = demo.communicate(timeout=30)
        assert demo.returncode == 1
        assert "error: the EMS stopped: killed by SIGKILL" in output
        assert "stopped the room servers too" in output
        assert "Traceback" not in output
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    finally:
        stop(demo)
