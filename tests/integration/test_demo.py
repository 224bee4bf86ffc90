"""`moot demo`: three processes up, the address printed, nothing left after a stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.ports import free_block

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


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_demo_starts_three_processes_and_stops_them_all(tmp_path: Path, stop_signal: int) -> None:
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
        assert len(children) == 3
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
