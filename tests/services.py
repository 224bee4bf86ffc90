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


def require(service: str, host: str, port: int) -> None:
    """Fail under CI (CI=true), skip with the reason on a developer's machine."""
    if reachable(host, port):
        return
    message = f"{service} is not reachable at {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: a missing service is a failure)")
    pytest.skip(message)
