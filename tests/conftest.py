"""Fixtures shared by every test: databases on SQLite and PostgreSQL, a clean environment."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from moot.ems.store.migrate import upgrade
from tests.services import POSTGRES_ADMIN_DB, POSTGRES_HOST, POSTGRES_PORT, require


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


def postgres_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database for one test (a copy of `template`, else empty); dropped
    afterwards."""
    require("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = f"moot_test_{secrets.token_hex(6)}"
    copy = "" if template is None else f' TEMPLATE "{template}"'
    asyncio.run(_admin(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield f"postgresql+asyncpg://{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
