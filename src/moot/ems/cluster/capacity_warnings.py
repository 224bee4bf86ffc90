"""Capacity warnings: limits guide placement but never stop a meeting, so going over one is
logged and stored (table `capacity_warnings`, `GET /api/v1/capacity/warnings`) instead.

Two sources: placement, when it had to put a meeting on a server over its limits
(`Placement.warning`), and status reports, when a running meeting has more live
participants than its server's max users per meeting (at most once per meeting per hour).
Warnings are stored in the background, so raising one never waits for the store (nor holds
a connection a caller may be waiting for).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.core.placement import WarningKind
from moot.ems import metrics
from moot.ems.cluster.registry import LiveServer
from moot.ems.store import capacity_warnings as store
from moot.ems.store.db import utcnow
from moot.ems.store.models import CapacityWarningRow

log = logging.getLogger("moot.ems.cluster.capacity")

# A running meeting over its server's limits is warned of at most this often (seconds).
REPEAT_AFTER = 3600.0


class CapacityWatch:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._warned: dict[str, float] = {}  # meeting id -> when (monotonic) it was warned of
        self._next_prune = time.monotonic() + REPEAT_AFTER
        self._tasks: set[asyncio.Task[None]] = set()

    def warn(
        self,
        kind: str,
        message: str,
        *,
        meeting_id: str | None = None,
        server_name: str | None = None,
    ) -> None:
        """Log the warning now and store it in the background."""
        log.warning("capacity warning (%s) for meeting %s: %s", kind, meeting_id or "-", message)
        metrics.CAPACITY_WARNINGS.labels(kind=kind).inc()
        self._in_background(self._store(kind, message, meeting_id, server_name, utcnow()))

    async def _store(
        self,
        kind: str,
        message: str,
        meeting_id: str | None,
        server_name: str | None,
        at: datetime,
    ) -> None:
        try:
            async with self._sessions() as session:
                store.add_warning(
                    session,
                    at=at,
                    kind=kind,
                    message=message,
                    meeting_id=meeting_id,
                    server_name=server_name,
                )
                await session.commit()
        except SQLAlchemyError as exc:
            log.warning("could not store a capacity warning (%s): %s", message, exc)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until every warning raised so far is stored."""
        while self._tasks:
            await asyncio.gather(*self._tasks)

    def check_report(self, server: LiveServer) -> None:
        """After a status report: warn of meetings with more live participants than allowed.

        Cheap: one length per meeting the server reported; repeats within REPEAT_AFTER are
        dropped.
        """
        limit = server.limits.max_users_per_meeting
        now = 0.0
        for meeting in server.meetings.values():
            count = len(meeting.participants)
            if count <= limit:
                continue
            now = now or time.monotonic()
            last = self._warned.get(meeting.meeting_id)
            if last is not None and now - last < REPEAT_AFTER:
                continue
            self._warned[meeting.meeting_id] = now
            self.warn(
                WarningKind.PARTICIPANTS_OVER_LIMIT.value,
                f"meeting {meeting.meeting_id} has {count} live participants on {server.name}, "
                f"more than its max users per meeting ({limit})",
                meeting_id=meeting.meeting_id,
                server_name=server.name,
            )
        if now and now >= self._next_prune:
            self._next_prune = now + REPEAT_AFTER
            self._warned = {m: t for m, t in self._warned.items() if now - t < REPEAT_AFTER}

    async def list(
        self, start: datetime | None, end: datetime | None, limit: int
    ) -> list[CapacityWarningRow]:
        async with self._sessions() as session:
            return await store.list_warnings(session, start=start, end=end, limit=limit)
