"""Reaching the real services tests need: fail under CI, skip with a reason elsewhere."""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_HOST = os.environ.get("MOOT_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("MOOT_TEST_PG_PORT", "5432"))
POSTGRES_ADMIN_DB = os.environ.get("MOOT_TEST_PG_DB", "test")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def under_ci() -> bool:
    """CI is set to anything but empty, 0 or false (CI systems say true, 1, yes, ...)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def missing(message: str) -> None:
    """A service or program a test needs is missing: fail under CI, else skip saying why."""
    if under_ci():
        pytest.fail(f"{message} (CI={os.environ['CI']}: a missing service is a failure)")
    pytest.skip(message)


def require(service: str, host: str, port: int) -> None:
    """Fail under CI, skip with the reason on a developer's machine."""
    if not reachable(host, port):
        missing(f"{service} is not reachable at {host}:{port}")


NATS_HOST = os.environ.get("MOOT_TEST_NATS_HOST", "127.0.0.1")
NATS_PORT = int(os.environ.get("MOOT_TEST_NATS_PORT", "4222"))


def nats_url() -> str:
    """The machine's NATS with JetStream (shared: give every run names of its own)."""
    require("NATS", NATS_HOST, NATS_PORT)
    return f"nats://{NATS_HOST}:{NATS_PORT}"
