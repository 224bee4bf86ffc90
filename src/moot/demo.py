"""`moot demo`: an EMS and two room servers as child processes on 127.0.0.1.

The children die with us: on Ctrl-C or SIGTERM we stop them (SIGTERM, then
SIGKILL after a grace period), and on Linux the kernel sends them SIGTERM if
this process is killed outright (PR_SET_PDEATHSIG), so none is left behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from moot.netcheck import ensure_port_free
from moot.secrets_file import load_or_create_cluster_secret

ROOM_NAMES = ("room1", "room2")
READY_TIMEOUT = 60.0
STOP_GRACE = 5.0


class DemoFailed(Exception):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(name: str, args: list[str], env: dict[str, str]) -> Child:
    process = subprocess.Popen(
        [sys.executable, "-m", "moot", *args],
        env={**os.environ, **env},
        preexec_fn=_die_with_parent,
    )
    return Child(name, process)


def stop_all(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


def _wait_ready(
    ems_url: str, children: list[Child], expect_rooms: int, stopping: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline and not stopping():
            for child in children:
                if child.process.poll() is not None:
                    code = child.process.returncode
                    raise DemoFailed(f"{child.name} exited with code {code}; its log is above")
            try:
                servers = client.get(f"{ems_url}/api/v1/servers").json()
                online = [s for s in servers if s["status"] == "online"]
                if len(online) >= expect_rooms:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
    if stopping():
        return
    raise DemoFailed(f"the room servers did not register within {READY_TIMEOUT:.0f}s")


def run_demo(
    *, host: str, port: int, data_dir: Path, log_level: str, say: Callable[[str], None]
) -> int:
    ports = [port, port + 1, port + 2]
    for p in ports:
        ensure_port_free(host, p)
    secret, _ = load_or_create_cluster_secret(data_dir)
    ems_url = f"http://{host}:{port}"
    common = {
        "MOOT_CLUSTER_SECRET": secret,
        "MOOT_DATA_DIR": str(data_dir),
        "MOOT_LOG_LEVEL": log_level,
    }
    children: list[Child] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        children.append(
            _spawn(
                "the EMS",
                ["serve", "--host", host, "--port", str(port)],
                {**common, "MOOT_DATABASE_URL": os.environ.get("MOOT_DATABASE_URL", "")},
            )
        )
        for name, room_port in zip(ROOM_NAMES, ports[1:], strict=True):
            children.append(
                _spawn(
                    f"room server {name}",
                    [
                        "room",
                        "--name",
                        name,
                        "--host",
                        host,
                        "--port",
                        str(room_port),
                        "--ems-url",
                        ems_url,
                    ],
                    common,
                )
            )
        _wait_ready(ems_url, children, len(ROOM_NAMES), lambda: stopping)
        if stopping:
            return 0
        say(f"Meeting Center: {ems_url}/")
        say("Press Ctrl-C to stop the EMS and both room servers.")
        while not stopping:
            for child in children:
                if child.process.poll() is not None:
                    raise DemoFailed(f"{child.name} stopped (exit code {child.process.returncode})")
            time.sleep(0.2)
        return 0
    finally:
        stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
