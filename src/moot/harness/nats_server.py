"""Debian's `nats-server` with JetStream, as the demo starts it for community services."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

NATS_SERVER = "/usr/sbin/nats-server"
READY_TIMEOUT = 10.0


def nats_server_binary() -> str | None:
    """The nats-server program, or None when it is not installed."""
    if Path(NATS_SERVER).exists():
        return NATS_SERVER
    return shutil.which("nats-server")


def nats_server_command(binary: str, host: str, port: int, store_dir: Path) -> list[str]:
    """JetStream on, its files in store_dir, no monitoring port, clients on host:port."""
    store_dir.mkdir(parents=True, exist_ok=True)
    return [binary, "-a", host, "-p", str(port), "-js", "-sd", str(store_dir)]


def wait_listening(host: str, port: int, timeout: float = READY_TIMEOUT) -> bool:
    """Until something accepts connections on host:port (True), or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
