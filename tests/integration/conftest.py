from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from moot.config import EmsSettings
from moot.ems.app import create_app
from tests.cluster import Cluster, Process


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The EMS in process (no room servers), on SQLite, then on PostgreSQL."""
    settings = EmsSettings(
        database_url=database_url, data_dir=tmp_path / "data", cluster_secret="secret"
    )
    # As an administrator (the cluster secret); tests of who may do what make their own.
    with TestClient(create_app(settings), headers={"Authorization": "Bearer secret"}) as client:
        yield client


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """An EMS (on SQLite, then on PostgreSQL) with two room servers; its meeting clock
    checks every half second, so meetings open and end on time without a wait."""
    running = Cluster(workdir=tmp_path, database_url=database_url)
    try:
        running.start_ems(MOOT_CLOCK_INTERVAL="0.5")
        running.start_room("room1")
        running.start_room("room2")
        yield running
    finally:
        running.stop()


@pytest.fixture
def three(database_url: str, tmp_path: Path) -> Iterator[tuple[Cluster, dict[str, Process]]]:
    """An EMS (on SQLite, then on PostgreSQL: failover and drain write the store under way)
    with three room servers, by name; a stopped one is resumed at the end."""
    running = Cluster(workdir=tmp_path, database_url=database_url)
    try:
        running.start_ems()
        rooms = {name: running.start_room(name) for name in ("room1", "room2", "room3")}
        yield running, rooms
    finally:
        for process in running.processes:
            if process.alive():
                process.popen.send_signal(signal.SIGCONT)
        running.stop()


def form_fields(client: TestClient, **fields: str) -> dict[str, str]:
    """Form fields as a page of the Meeting Center sends them: with its CSRF token."""
    if "moot_csrf" not in client.cookies:
        client.get("/healthz")  # every answer gives a browser its CSRF cookie
    return {**fields, "csrf": client.cookies["moot_csrf"]}
