"""Fixtures shared by every test: databases on SQLite and PostgreSQL, a clean environment."""

from __future__ import annotations

import asyncio
import secrets
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


def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    require("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    name = f"moot_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'moot.db'}"
    else:
        yield from postgres_database()


@pytest.fixture
def migrated_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url
