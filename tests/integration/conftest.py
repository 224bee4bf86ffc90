from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from moot.ems.app import create_app
from moot.harness import Cluster, Process
from moot.infra.settings import EmsSettings
from tests.conftest import ClusterOptions, postgres_database, run_cluster


@pytest.fixture
def ems_settings() -> dict[str, Any]:
    """Settings of `api`'s EMS beyond its database; a module overrides this to change them."""
    return {}


def in_process_ems(
    database_url: str,
    data_dir: Path,
    secret: str = "secret",
    *,
    admin: bool = True,
    raise_server_exceptions: bool = True,
    **settings: Any,
) -> TestClient:
    """The EMS in this process (no room servers); its client is an administrator (the
    cluster secret) unless not `admin`: tests of who may do what make their own. Enter it
    to start the EMS."""
    app = create_app(
        EmsSettings(database_url=database_url, data_dir=data_dir, cluster_secret=secret, **settings)
    )
    headers = {"Authorization": f"Bearer {secret}"} if admin else {}
    return TestClient(app, headers=headers, raise_server_exceptions=raise_server_exceptions)


@pytest.fixture
def api(database_url: str, tmp_path: Path, ems_settings: dict[str, Any]) -> Iterator[TestClient]:
    """The EMS in process (no room servers), on SQLite, then on PostgreSQL."""
    with in_process_ems(database_url, tmp_path / "data", **ems_settings) as client:
        yield client


# Two room servers; the meeting clock checks every half second, so meetings open and end on
# time without a wait.
ON_TIME = ClusterOptions(ems_env={"MOOT_CLOCK_INTERVAL": "0.5"})


@pytest.fixture
def cluster_options() -> ClusterOptions:
    return ON_TIME


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
        yield from run_cluster(workdir, url, ON_TIME)


@pytest.fixture
def three(database_url: str, tmp_path: Path) -> Iterator[tuple[Cluster, dict[str, Process]]]:
    """An EMS (on SQLite, then on PostgreSQL: failover and drain write the store under way)
    with three room servers, by name; a stopped one is resumed at the end."""
    options = ClusterOptions(rooms=("room1", "room2", "room3"))
    for running in run_cluster(tmp_path, database_url, options):
        yield running, dict(running.rooms)


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
