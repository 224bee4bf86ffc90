from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from moot.ems.app import create_app
from moot.infra.settings import EmsSettings
from tests.cluster import Cluster, Process
from tests.conftest import postgres_database


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
        running.start_rooms("room1", "room2")
        yield running
    finally:
        running.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shared_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """As `cluster`, started once for the tests of a module that leave each other alone: each
    makes meetings of its own (never counting every meeting), and none stops a process,
    changes a server or the cluster's configuration, or sends a message to all users."""
    workdir = tmp_path_factory.mktemp("shared-cluster")
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, workdir / "moot.db")
        urls: Iterator[str] = iter([f"sqlite+aiosqlite:///{workdir / 'moot.db'}"])
    else:
        urls = postgres_database(request.getfixturevalue("postgres_template"))
    for url in urls:
        running = Cluster(workdir=workdir, database_url=url)
        try:
            running.start_ems(MOOT_CLOCK_INTERVAL="0.5")
            running.start_rooms("room1", "room2")
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
        names = ("room1", "room2", "room3")
        rooms = dict(zip(names, running.start_rooms(*names), strict=True))
        yield running, rooms
    finally:
        for process in running.processes:
            if process.alive():
                process.popen.send_signal(signal.SIGCONT)
        running.stop()


CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(client: TestClient | httpx.Client) -> str:
    """The CSRF token this browser's forms carry (bound to its cookies), read from a page."""
    page = client.get("/signin")
    found = CSRF_FIELD.search(page.text)
    assert found, "the sign-in page has no CSRF field"
    return found.group(1)


async def csrf_of_async(client: httpx.AsyncClient) -> str:
    """csrf_of, for an asynchronous client."""
    found = CSRF_FIELD.search((await client.get("/signin")).text)
    assert found, "the sign-in page has no CSRF field"
    return found.group(1)


def form_fields(client: TestClient, **fields: str) -> dict[str, str]:
    """Form fields as a page of the Meeting Center sends them: with its CSRF token."""
    return {**fields, "csrf": csrf_of(client)}
