"""Schema migrations, run by `moot db upgrade` and at EMS start-up.

A database already at the newest revision (an EMS starting again, a copy of a migrated
database) is recognised by reading its `alembic_version` row: alembic, its migration
scripts and their imports, a good part of an EMS's start-up, are then never loaded.
"""

from __future__ import annotations

import asyncio
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_)?revision\b[^=\n]*=\s*(?:"([^"]*)"|None)', re.M)


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision: the one no migration names as its `down_revision`."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        for down, value in _REVISION.findall(script.read_text()):
            if value:
                (parents if down else revisions).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads, not one: {sorted(heads)}")
    return heads.pop()


async def _at_head(database_url: str) -> bool:
    """Whether the database's schema is at the newest revision (False when it cannot tell:
    no database yet, no alembic_version table; alembic then does the work and reports)."""
    from moot.ems.store.db import create_engine

    try:
        engine = create_engine(database_url)
    except (SQLAlchemyError, ValueError):
        return False
    try:
        async with engine.connect() as connection:
            found = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            versions = list(found.scalars())
    except (SQLAlchemyError, OSError):
        return False
    finally:
        await engine.dispose()
    return versions == [head_revision()]


def _prepare_sqlite_dir(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema to `revision`. Blocking: env.py runs its own event loop."""
    _prepare_sqlite_dir(database_url)
    if revision == "head" and asyncio.run(_at_head(database_url)):
        return
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str) -> None:
    """Run `upgrade` from inside an event loop (in a worker thread)."""
    _prepare_sqlite_dir(database_url)
    if await _at_head(database_url):
        return
    await asyncio.to_thread(upgrade, database_url)
