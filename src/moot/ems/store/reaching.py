"""Reaching the store at start: a PostgreSQL that is down (or not up yet: machines start
in any order) is said in one line naming the address tried and why, and tried again with
backoff until it answers, instead of a traceback and an exit.

SQLite is a file next to the EMS: what goes wrong there is no outage to wait out.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from moot.ems.store.db import create_engine

log = logging.getLogger("moot.ems.store")

RETRY_FIRST, RETRY_MOST = 0.5, 10.0


def safe_address(database_url: str) -> str:
    """The store's address as a log may show it: no password."""
    return make_url(database_url).render_as_string(hide_password=True)


def why(exc: BaseException) -> str:
    """The driver's reason, on one line (SQLAlchemy wraps it with a long tail)."""
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    line = str(reason).strip().splitlines()
    return line[0] if line else type(reason).__name__


async def wait_for_store(
    database_url: str, *, first: float = RETRY_FIRST, most: float = RETRY_MOST
) -> None:
    """Return once the store answers a query; until then, one line per try."""
    if make_url(database_url).get_backend_name() == "sqlite":
        return
    engine = create_engine(database_url)
    wait, tries = first, 0
    try:
        while True:
            tries += 1
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            except (OSError, DBAPIError, TimeoutError) as exc:
                log.error(
                    "cannot reach the database at %s: %s; trying again in %.1f s",
                    safe_address(database_url),
                    why(exc),
                    wait,
                )
                await asyncio.sleep(wait)
                wait = min(wait * 2, most)
                continue
            if tries > 1:
                log.info("reached the database at %s", safe_address(database_url))
            return
    finally:
        await engine.dispose()
