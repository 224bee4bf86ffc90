"""Reaching the store at start: a PostgreSQL that is down (or not up yet) is said in one
line naming the address tried and why, and tried again with backoff until it answers
(moot.infra.retrying).

SQLite is a file next to the EMS: what goes wrong there is no outage to wait out.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from moot.ems.store.db import create_engine
from moot.infra.retrying import RETRY_FIRST, RETRY_MOST, until_reached

log = logging.getLogger("moot.ems.store")


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

    async def ask() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await until_reached(
            ask,
            what=f"the database at {safe_address(database_url)}",
            errors=(OSError, DBAPIError, TimeoutError),
            log=log,
            reason=why,
            first=first,
            most=most,
        )
    finally:
        await engine.dispose()
