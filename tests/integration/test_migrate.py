"""Start-up's shortcut: a database at the newest revision is recognised without alembic, and
one behind it is still migrated."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from moot.ems.store.db import create_engine
from moot.ems.store.migrate import alembic_config, head_revision, upgrade, upgrade_async


def version_of(database_url: str) -> list[str]:
    async def read() -> list[str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                found = await connection.execute(sa.text("SELECT version_num FROM alembic_version"))
                return list(found.scalars())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revision() == scripts.get_current_head()


def test_a_database_behind_the_head_is_still_migrated(empty_database_url: str) -> None:
    upgrade(empty_database_url, "0015")
    assert version_of(empty_database_url) == ["0015"]
    asyncio.run(upgrade_async(empty_database_url))  # as the EMS starts
    assert version_of(empty_database_url) == [head_revision()]
    upgrade(empty_database_url)  # at the head: nothing to do, nothing broken
    assert version_of(empty_database_url) == [head_revision()]


def test_nodes_migrating_one_new_postgresql_database_at_once_both_start() -> None:
    """Two EMS nodes started together on a new database: one creates the schema, the other
    waits for it and finds it at its head (before, the second failed on a duplicate
    alembic_version row or table). PostgreSQL only: several nodes need it."""
    import subprocess
    import sys

    from tests.conftest import postgres_database

    for url in postgres_database():
        script = "import sys; from moot.ems.store.migrate import upgrade; upgrade(sys.argv[1])"
        nodes = [
            subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        for node in nodes:
            _, errors = node.communicate(timeout=120)
            assert node.returncode == 0, errors
        assert version_of(url) == [head_revision()]
