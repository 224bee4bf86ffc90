"""Server samples: each room server's usage over time, for the report of its peaks.

The registry holds only the latest report of each server; the peak of a day needs history.
One task looks at the registry at every heartbeat interval and keeps, per online server, the
highest active meetings, participants, CPU and memory seen since the last sample; once per
`sample_interval` (default a minute) it writes one `server_samples` row per server seen, so a
peak between two samples is not missed. A row also holds when its highest meetings and
participants were first seen (the report's "reached at"): the row's `at` is only when it was
written, up to an interval later. When the task stops (the EMS shuts down), it writes what it
has seen since the last row. Rows older than `sample_retention_days` are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.core.placement import ServerState
from moot.ems.cluster.registry import Registry
from moot.ems.store.db import utcnow
from moot.ems.store.models import ServerSampleRow

log = logging.getLogger("moot.ems.samples")


@dataclass(slots=True)
class Usage:
    """The highest figures seen for one server since the last sample, and when the
    highest meetings and participants were first seen."""

    meetings_at: datetime
    participants_at: datetime
    active_meetings: int = 0
    participants: int = 0
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    community_connections: int = 0
    community_signins: int = 0
    community_messages: int = 0


class Sampler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: Registry,
        *,
        interval: float,
        retention_days: int,
        observe_every: float,
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self.interval = interval
        self.retention = timedelta(days=retention_days)
        self.observe_every = min(observe_every, interval)
        self._seen: dict[str, Usage] = {}
        # The community sign-ins and messages of each server counted so far (the registry
        # keeps running totals since the EMS started).
        self._counted: dict[str, tuple[int, int]] = {}

    def observe(self, at: datetime | None = None) -> None:
        """Fold every online server's latest report into the highest figures seen."""
        now = at or utcnow()
        for server in self._registry.all():
            if server.state is not ServerState.ONLINE:
                continue
            usage = self._seen.setdefault(server.name, Usage(meetings_at=now, participants_at=now))
            if len(server.meetings) > usage.active_meetings:
                usage.active_meetings, usage.meetings_at = len(server.meetings), now
            if server.participants > usage.participants:
                usage.participants, usage.participants_at = server.participants, now
            usage.cpu_percent = max(usage.cpu_percent, server.cpu_percent)
            usage.memory_percent = max(usage.memory_percent, server.memory_percent)
            usage.community_connections = max(
                usage.community_connections, server.community_connections
            )
            signins, messages = self._counted.get(server.name, (0, 0))
            usage.community_signins += max(server.community_signins - signins, 0)
            usage.community_messages += max(server.community_messages - messages, 0)
            self._counted[server.name] = (server.community_signins, server.community_messages)

    async def flush(self, at: datetime | None = None) -> int:
        """Write one row per server seen since the last flush; drop rows past retention."""
        now = at or utcnow()
        seen, self._seen = self._seen, {}
        async with self._sessions() as session:
            session.add_all(
                ServerSampleRow(
                    server_name=name,
                    at=now,
                    active_meetings=u.active_meetings,
                    meetings_at=u.meetings_at,
                    participants=u.participants,
                    participants_at=u.participants_at,
                    cpu_percent=round(u.cpu_percent, 2),
                    memory_percent=round(u.memory_percent, 2),
                    community_connections=u.community_connections,
                    community_signins=u.community_signins,
                    community_messages=u.community_messages,
                )
                for name, u in seen.items()
            )
            await session.execute(
                delete(ServerSampleRow).where(ServerSampleRow.at < now - self.retention)
            )
            await session.commit()
        return len(seen)

    async def run(self) -> None:
        """Observe at every heartbeat, write every interval, until cancelled; then write
        the interval begun (else up to an interval of peaks is lost at every restart)."""
        due = time.monotonic() + self.interval
        try:
            while True:
                await asyncio.sleep(self.observe_every)
                self.observe()
                if time.monotonic() >= due:
                    due += self.interval
                    await self._write()
        except asyncio.CancelledError:
            self.observe()
            # Bounded: a store that hangs must not hold up the shutdown.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self._write()
            raise

    async def _write(self) -> None:
        try:
            await self.flush()
        except Exception:  # the store is down: the next interval tries again
            log.exception("could not write the server samples")
