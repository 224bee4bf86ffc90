"""What the parts of the cluster manager share: the store, the live registry, the events,
the timing, and the background work they start (awaited, then cancelled, at shutdown)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.core.detector import Timing
from moot.ems.cluster.capacity_warnings import CapacityWatch
from moot.ems.cluster.events import ClusterEvents
from moot.ems.cluster.registry import LiveServer, Registry
from moot.ems.store.models import MeetingRow, RoomServerRow
from moot.protocol.control import MeetingFile, ServerLimits

# What the cluster manager asks of the services above it, given to it once, by the
# container (moot.ems.container): whether a server may record (the cluster configuration),
# and a meeting's files with their links for its pages at an epoch (moot.ems.files).
RecordingAllowed = Callable[[str], bool]
FilesOf = Callable[[MeetingRow, int], Awaitable[list[MeetingFile]]]


async def no_files(meeting: MeetingRow, epoch: int) -> list[MeetingFile]:
    return []


def any_server_records(server_name: str) -> bool:
    return True


@dataclass
class ClusterContext:
    sessions: async_sessionmaker[AsyncSession]
    heartbeat: float
    command_timeout: float
    timing: Timing
    # How long before its start a meeting may be opened (`early_join_minutes`): which
    # occurrence a running meeting is in.
    early_join: timedelta = timedelta(minutes=10)
    registry: Registry = field(default_factory=Registry)
    events: ClusterEvents = field(default_factory=ClusterEvents)
    recording_allowed: RecordingAllowed = any_server_records
    files_of: FilesOf = no_files
    stopping: bool = False
    background: set[asyncio.Task[None]] = field(default_factory=set)
    capacity: CapacityWatch = field(init=False)

    def __post_init__(self) -> None:
        self.capacity = CapacityWatch(self.sessions)

    def in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task


def limits_of(row: RoomServerRow) -> ServerLimits:
    return ServerLimits(
        max_active_meetings=row.max_active_meetings,
        max_users_per_meeting=row.max_users_per_meeting,
        instant_meetings=row.instant_meetings,
        location=row.location,
    )


def live_from_row(row: RoomServerRow) -> LiveServer:
    return LiveServer(name=row.name, url=row.url, limits=limits_of(row), draining=row.draining)
