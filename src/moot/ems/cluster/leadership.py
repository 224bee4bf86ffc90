"""Which EMS node leads: the holder of a PostgreSQL advisory lock.

The lock is session-level, taken on a connection of its own: it is held while that
connection lives and is released by PostgreSQL the moment it closes, so a node killed
with SIGKILL gives it up at once (the kernel closes its socket) and another node takes it
at its next try (every TRY seconds). A leader checks its connection every TRY seconds
too; when the check fails it has lost the lease and must stop acting before another
node can start: it says so and the process exits (crash-only; its supervisor starts it
again as a follower). What a deposed leader might still write in between is fenced by the
meetings' own epochs (moot.ems.store.hosting.record_hosted compares and sets them), so no
meeting is moved twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("moot.ems.cluster")

TRY = 0.5  # seconds between tries of the lock (a follower) or checks of it (the leader)
LOCK_KEY = 0x6D6F6F74  # "moot": the advisory lock's key, one per database


class LeaseLost(Exception):
    """The leader's lock connection failed: another node may lead now."""


class Lease:
    """Wait to lead, then hold the lease until it is lost."""

    def __init__(self, engine: AsyncEngine, node: str) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError(
                "several EMS nodes (a nats:// bus_url) share one PostgreSQL database: "
                f"database_url names {engine.dialect.name}"
            )
        self._engine = engine
        self.node = node
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> None:
        """Return once this node holds the lock (PostgreSQL may be away meanwhile)."""
        said = False
        while True:
            try:
                if self._conn is None:
                    self._conn = await self._engine.connect()
                got = await self._conn.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
                )
                await self._conn.commit()
                if got:
                    return
                if not said:
                    log.info(
                        "EMS node %s follows: another node holds the leader's lease", self.node
                    )
                    said = True
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("EMS node %s cannot reach PostgreSQL for the lease: %s", self.node, exc)
                await self._drop()
            await asyncio.sleep(TRY)

    async def hold(self, lost: Callable[[str], Awaitable[None]]) -> None:
        """Check the lock's connection every TRY seconds; call `lost` when it fails."""
        while True:
            await asyncio.sleep(TRY)
            try:
                assert self._conn is not None
                await asyncio.wait_for(self._conn.scalar(text("SELECT 1")), 2 * TRY)
                await self._conn.commit()
            except (OperationalError, DBAPIError, OSError, TimeoutError, AssertionError) as exc:
                await self._drop()
                await lost(f"the lease's connection to PostgreSQL failed ({exc})")
                return

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 1.0)
            except Exception:  # already broken: nothing to release (PostgreSQL did)
                log.debug("lease connection closed with an error", exc_info=True)

    async def release(self) -> None:
        """At a clean shutdown: another node leads at its next try."""
        await self._drop()
