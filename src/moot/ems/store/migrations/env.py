"""Alembic environment: the URL comes from Moot's settings (via `moot db upgrade`)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from moot.ems.store.db import create_engine
from moot.ems.store.models import Base

config = context.config
target_metadata = Base.metadata

# Several EMS nodes starting at once on a new PostgreSQL database would each create the
# schema (a duplicate alembic_version row at best): the first to take this lock migrates,
# the others wait for its commit and then find the schema at its head. Not the leader's
# lock (moot.ems.cluster.leadership): a node migrates before it asks to lead.
MIGRATION_LOCK_KEY = 0x6D6F6F6D  # "moom"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by moot.ems.store.migrate"
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # Held until the commit below; alembic then runs in this same transaction.
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
