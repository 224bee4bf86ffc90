"""The cluster manager: the EMS's side of the cluster, in parts by responsibility.

`ClusterManager` builds the parts and is what the services above it call. The parts:
links (handshakes, messages up, shutdown: links.py), commands down (commands.py), server
states (states.py), bookings and placement (bookings.py), failover (failover.py), drain
(drain.py), the supervisor's tick that drives failure detection, failover and drain
deadlines (supervisor.py), the journal writer (journal.py) and capacity warnings
(capacity_warnings.py). They share a ClusterContext (context.py) and announce what
services listen to through ClusterEvents (events.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.bus import Link
from moot.core.capacity_plan import HourPlan, PlanWarning, ServerCapacity
from moot.core.detector import Timing
from moot.core.placement import Placement, ServerState
from moot.ems.cluster.bookings import Bookings, NoRoomServer
from moot.ems.cluster.capacity_warnings import CapacityWatch
from moot.ems.cluster.commands import CommandFailed, Commands
from moot.ems.cluster.context import (
    ClusterContext,
    FilesOf,
    RecordingAllowed,
    limits_of,
    live_from_row,
)
from moot.ems.cluster.drain import Drain
from moot.ems.cluster.events import ClusterEvents
from moot.ems.cluster.failover import Failover
from moot.ems.cluster.journal import JournalWriter
from moot.ems.cluster.links import Links
from moot.ems.cluster.registry import LiveServer, Registry
from moot.ems.cluster.states import ServerStates
from moot.ems.cluster.supervisor import Supervisor
from moot.ems.store import meetings as meeting_store
from moot.ems.store import servers as server_store
from moot.ems.store.db import utcnow
from moot.ems.store.models import MeetingRow

__all__ = [
    "ClusterManager",
    "CommandFailed",
    "NoRoomServer",
    "limits_of",
]

# After an EMS restart, how long room servers get to reconnect before their
# meetings are moved (on top of the reconnect grace).
RESTART_ALLOWANCE = 10.0


class ClusterManager:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cluster_secret: str,
        public_key_pem: str,
        heartbeat_interval: float,
        auto_register: bool,
        command_timeout: float,
        timing: Timing | None = None,
        early_join: timedelta = timedelta(minutes=10),
    ) -> None:
        self._ctx = ctx = ClusterContext(
            sessions=sessions,
            heartbeat=heartbeat_interval,
            command_timeout=command_timeout,
            timing=timing or Timing(reconnect_grace=1.0, failure_after=3 * heartbeat_interval),
            early_join=early_join,
        )
        self.journal = JournalWriter(sessions, ctx.events.moderated)
        self.commands = Commands(ctx)
        self.states = ServerStates(ctx, self.commands)
        self.bookings = Bookings(ctx, self.commands)
        self.failover = Failover(ctx, self.states, self.commands, self.bookings)
        self.drain = Drain(ctx, self.commands, self.failover)
        self.supervisor = Supervisor(self.failover, self.drain)
        self.links = Links(
            ctx,
            cluster_secret=cluster_secret,
            public_key_pem=public_key_pem,
            auto_register=auto_register,
            states=self.states,
            commands=self.commands,
            bookings=self.bookings,
            failover=self.failover,
            journal=self.journal,
        )

    # -- what the parts share ---------------------------------------------

    @property
    def registry(self) -> Registry:
        return self._ctx.registry

    @property
    def capacity(self) -> CapacityWatch:
        return self._ctx.capacity

    @property
    def events(self) -> ClusterEvents:
        return self._ctx.events

    def provide(
        self, *, recording_allowed: RecordingAllowed | None = None, files_of: FilesOf | None = None
    ) -> None:
        """What the manager asks of the services above it (the container gives it, once,
        before any room server registers)."""
        if recording_allowed is not None:
            self._ctx.recording_allowed = recording_allowed
        if files_of is not None:
            self._ctx.files_of = files_of

    def recording_allowed(self, server_name: str) -> bool:
        return self._ctx.recording_allowed(server_name)

    # -- start-up, background work, shutdown ------------------------------

    async def load(self) -> None:
        """Know every stored server: offline until it connects.

        One that hosts meetings is SUSPECT from the start: after an EMS restart its room
        servers get a while to reconnect, and the meetings of one that never does are moved.
        """
        async with self._ctx.sessions() as session:
            for row in await server_store.list_servers(session):
                live = live_from_row(row)
                if await server_store.count_active_meetings(session, row.name):
                    live.state = ServerState.SUSPECT
                    live.disconnected_at = time.monotonic() + RESTART_ALLOWANCE
                self.registry.put(live)
                if row.draining and row.drain_deadline is not None:
                    self.drain.set_deadline(row.name, row.drain_deadline)
            # Bookings of scheduled meetings, where they were booked.
            for meeting in await meeting_store.scheduled_until_after(session, utcnow()):
                self.bookings.restore(meeting)

    async def run(self) -> None:
        """The manager's background work: the supervisor's tick and the journal writer."""
        await asyncio.gather(self.supervisor.watch(), self.journal.run())

    async def check_once(self) -> None:
        """One tick of the supervisor (failure detection, failover, drain deadlines)."""
        self.supervisor.tick()

    async def serve_link(self, link: Link) -> None:
        await self.links.serve_link(link)

    async def close(self) -> None:
        await self.links.close()

    async def disconnect(self, name: str, reason: str) -> None:
        await self.links.disconnect(name, reason)

    # -- bookings and placement -------------------------------------------

    def book(self, meeting: MeetingRow, now: datetime) -> Placement | None:
        return self.bookings.book(meeting, now)

    def unbook(self, meeting_id: str) -> None:
        self.bookings.unbook(meeting_id)

    async def rebook_from(self, server_name: str) -> int:
        return await self.bookings.rebook_from(server_name)

    def resize(self, server_name: str, meeting_id: str, expected: int) -> None:
        self.bookings.resize(server_name, meeting_id, expected)

    async def open_meeting(self, meeting: MeetingRow) -> tuple[LiveServer, int]:
        return await self.bookings.open_meeting(meeting)

    def capacity_plan(
        self, hours: range
    ) -> tuple[list[ServerCapacity], list[HourPlan], list[PlanWarning]]:
        return self.bookings.capacity_plan(hours)

    # -- drain ------------------------------------------------------------

    def set_drain_deadline(self, name: str, deadline: datetime | None) -> None:
        self.drain.set_deadline(name, deadline)

    async def evacuate(self, name: str, why: str = "evacuated") -> int:
        return await self.drain.evacuate(name, why)

    # -- commands and what the room servers report ------------------------

    async def close_meeting(self, meeting_id: str, server_name: str, reason: str) -> None:
        await self.commands.close_meeting(meeting_id, server_name, reason)

    def files_changed(self, meeting_id: str) -> None:
        self.commands.files_changed(meeting_id)

    async def notify(
        self,
        server_name: str,
        meeting_id: str | None,
        text: str,
        *,
        to: str = "moderators",
        broadcast_id: int | None = None,
        expires_at: datetime | None = None,
        withdrawn: bool = False,
    ) -> None:
        await self.commands.notify(
            server_name,
            meeting_id,
            text,
            to=to,
            broadcast_id=broadcast_id,
            expires_at=expires_at,
            withdrawn=withdrawn,
        )

    async def apply_config(self, server: LiveServer, version: int, values: dict[str, Any]) -> None:
        await self.commands.apply_config(server, version, values)

    def answering(self, server: LiveServer) -> bool:
        """Heard from within two heartbeats. A page is not sent to a server gone silent:
        it may hang (SIGSTOP, a cut network), which closes no connection, and the page
        would wait on it until the failure detector moves the meeting anyway."""
        last = server.last_heard_at
        return last is not None and time.monotonic() - last <= 2 * self._ctx.heartbeat

    def participants_in(self, server_name: str, meeting_id: str) -> int:
        """People in a meeting now, as its room server last reported."""
        server = self.registry.get(server_name)
        status = server.meetings.get(meeting_id) if server is not None else None
        return len(status.participants) if status is not None else 0
