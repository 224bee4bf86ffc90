"""Fixtures shared by every test: databases on SQLite and PostgreSQL, a clean environment,
and a cluster of real processes (moot.harness) that a module shapes through
`cluster_options` and `cluster_url`."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings

from moot.ems.auth.users import add_user
from moot.ems.store.migrate import upgrade
from moot.harness import Cluster
from tests.services import POSTGRES_ADMIN_DB, POSTGRES_HOST, POSTGRES_PORT, require

# Speed is measured in bench/, never in a test: Hypothesis's 200 ms deadline per example
# failed property tests of placement on a machine busy with the suite's other workers.
hypothesis_settings.register_profile("moot", deadline=None)
hypothesis_settings.load_profile("moot")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MOOT_* setting or moot.toml of the developer's leaks into a test."""
    import os

    for key in list(os.environ):
        if key.startswith("MOOT_"):
            monkeypatch.delenv(key)
    empty = tmp_path / "empty-moot.toml"
    empty.write_text("")
    monkeypatch.setenv("MOOT_CONFIG", str(empty))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(host=POSTGRES_HOST, port=POSTGRES_PORT, database=POSTGRES_ADMIN_DB)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# PostgreSQL takes a checkpoint for every DROP DATABASE: up to seconds while other work
# writes. A test's database is dropped in a thread of its own while the next tests run; the
# run waits for every drop at its end, and a drop that failed fails the last test's teardown.
_DROPS = ThreadPoolExecutor(1, thread_name_prefix="drop-database")
_dropping: list[Future[None]] = []


def _drop(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", autouse=True)
def _databases_dropped() -> Iterator[None]:
    """At the end of the run (after the other session fixtures): every drop done."""
    yield
    _DROPS.shutdown(wait=True)
    for dropped in _dropping:
        dropped.result()


def postgres_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database for one test (a copy of `template`, else empty); dropped
    afterwards, in the background (its processes have stopped: nothing uses it)."""
    require("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = f"moot_test_{secrets.token_hex(6)}"
    copy = "" if template is None else f' TEMPLATE "{template}"'
    asyncio.run(_admin(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield f"postgresql+asyncpg://{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        _dropping.append(_DROPS.submit(_drop, name))


# A test's database is a copy of one migrated once per test worker (a file copy on SQLite,
# CREATE DATABASE ... TEMPLATE on PostgreSQL): migrating takes longer than copying, and the
# migrations from an empty database still run, here once per worker and store and in every
# EMS process a test starts on a database file of its own.


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "moot.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    assert not path.with_name("moot.db-wal").exists(), "the copy would miss the WAL's pages"
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    for url in postgres_database():
        upgrade(url)
        yield url.rsplit("/", 1)[1]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database at the current schema, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "moot.db")
        yield f"sqlite+aiosqlite:///{tmp_path / 'moot.db'}"
    else:
        yield from postgres_database(request.getfixturevalue("postgres_template"))


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A new SQLite database at the current schema (for a test that needs no other store)."""
    shutil.copyfile(sqlite_template, tmp_path / "sqlite.db")
    return f"sqlite+aiosqlite:///{tmp_path / 'sqlite.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database with no schema at all (for a migration test that starts from an old
    revision), once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'moot.db'}"
    else:
        yield from postgres_database()


@pytest.fixture
def migrated_url(database_url: str) -> str:
    upgrade(database_url)  # at the head already: the check a starting EMS makes
    return database_url


# -- a cluster of real processes ---------------------------------------------------------


@dataclass(frozen=True)
class User:
    """An account made in the store before the EMS starts; its password is NAME-password."""

    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterOptions:
    """What a module's cluster is: its room servers, its processes' settings, its users."""

    rooms: tuple[str, ...] = ("room1", "room2")
    ems_env: Mapping[str, str] = field(default_factory=dict)
    room_env: Mapping[str, str] = field(default_factory=dict)
    users: tuple[User, ...] = ()


def run_cluster(workdir: Path, database_url: str, options: ClusterOptions) -> Iterator[Cluster]:
    """A started cluster (EMS, then its room servers side by side); stopped afterwards, when
    a traceback in any process's log fails the test."""
    for user in options.users:
        made = add_user(database_url, user.name, f"{user.name}-password", groups=[*user.groups])
        # In a thread of its own: Playwright's sync API runs an event loop in this one.
        with ThreadPoolExecutor(1) as worker:
            worker.submit(asyncio.run, made).result()
    running = Cluster(workdir=workdir, database_url=database_url)
    try:
        running.start_ems(**options.ems_env)
        running.start_rooms(*options.rooms, **options.room_env)
        yield running
    finally:
        running.stop()


@pytest.fixture
def cluster_options() -> ClusterOptions:
    """Two room servers and default settings; a module overrides this fixture to change it."""
    return ClusterOptions()


@pytest.fixture
def cluster_url(database_url: str) -> str:
    """The store of `cluster`: both SQLite and PostgreSQL unless a module (or the browser
    tests' conftest) overrides it with `sqlite_url`."""
    return database_url


@pytest.fixture
def cluster(cluster_url: str, cluster_options: ClusterOptions, tmp_path: Path) -> Iterator[Cluster]:
    """An EMS with its room servers (cluster_options), all real processes, for one test."""
    yield from run_cluster(tmp_path, cluster_url, cluster_options)


def module_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    template: Path,
    options: ClusterOptions = ClusterOptions(),
    prepare: Callable[[str], None] | None = None,
) -> Iterator[Cluster]:
    """A cluster on SQLite for the tests of one module (a fixture of scope "module");
    `prepare` writes to its database first."""
    workdir = tmp_path_factory.mktemp("cluster")
    shutil.copyfile(template, workdir / "moot.db")
    url = f"sqlite+aiosqlite:///{workdir / 'moot.db'}"
    if prepare is not None:
        # In a thread of its own: Playwright's sync API runs an event loop in this one.
        with ThreadPoolExecutor(1) as worker:
            worker.submit(prepare, url).result()
    yield from run_cluster(workdir, url, options)
