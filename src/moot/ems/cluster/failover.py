"""Failure detection and failover: a server the detector judges failed is fenced and its
meetings move elsewhere (new host, epoch + 1, journal replayed); those no server can take
yet are retried."""

from __future__ import annotations

import asyncio
import logging
import time

from moot.core.detector import Observation, assess
from moot.core.meeting_status import MeetingStatus
from moot.core.placement import ServerState
from moot.ems import metrics
from moot.ems.cluster.bookings import Bookings, NoRoomServer
from moot.ems.cluster.commands import CommandFailed, Commands
from moot.ems.cluster.context import ClusterContext
from moot.ems.cluster.registry import LiveServer
from moot.ems.cluster.states import ServerStates
from moot.ems.store import hosting
from moot.ems.store import meetings as meeting_store
from moot.ems.store.models import MeetingRow

log = logging.getLogger("moot.ems.cluster")

ORPHAN_RETRY = 1.0


class Failover:
    def __init__(
        self, ctx: ClusterContext, states: ServerStates, commands: Commands, bookings: Bookings
    ) -> None:
        self._ctx = ctx
        self._states = states
        self._commands = commands
        self._bookings = bookings
        # Meetings of a failed server that no other server could take yet: retried.
        self.orphans: set[str] = set()
        self._next_orphan_retry = 0.0
        self._retrying = False
        self._failing: set[str] = set()  # servers being failed in the background

    def check(self, now: float) -> None:
        """One run of the failure detector over every server, as of `now` (monotonic)."""
        for server in self._ctx.registry.all():
            seen = Observation(
                state=server.state,
                connected=server.link is not None,
                since_report=None if server.last_heard_at is None else now - server.last_heard_at,
                since_disconnect=(
                    None if server.disconnected_at is None else now - server.disconnected_at
                ),
            )
            verdict = assess(seen, self._ctx.timing)
            failing = server.state is ServerState.FAILED or server.name in self._failing
            if verdict is ServerState.FAILED and not failing:
                why = (
                    f"no report for {self._ctx.timing.failure_after:g}s"
                    if seen.connected
                    else f"did not reconnect within {self._ctx.timing.reconnect_grace:g}s"
                )
                # In the background: a slow move must not hold up detecting the others.
                self._failing.add(server.name)
                self._ctx.in_background(self.fail(server, why))
        if self.orphans and now >= self._next_orphan_retry and not self._retrying:
            self._next_orphan_retry = now + ORPHAN_RETRY
            self._retrying = True
            self._ctx.in_background(self._retry_orphans())

    async def fail(self, server: LiveServer, why: str) -> None:
        """FAILED: fence it (close its link, if any) and move its meetings elsewhere."""
        metrics.FAILOVERS.inc()  # counted as decided, before the first await
        try:
            link = server.link
            self._states.drop_link(server)
            await self._states.set_state(server, ServerState.FAILED, why)
            if link is not None:
                await link.close(f"failed: {why}")
            await self.move_meetings_off(server)
        finally:
            self._failing.discard(server.name)

    async def _retry_orphans(self) -> None:
        try:
            await asyncio.gather(*(self.move(m) for m in list(self.orphans)))
        finally:
            self._retrying = False

    async def move_meetings_off(self, server: LiveServer) -> None:
        async with self._ctx.sessions() as session:
            hosted = await meeting_store.meetings_on_server(session, server.name)
        server.meetings = {}
        self._ctx.registry.unhost_all(server)
        started = time.monotonic()
        await asyncio.gather(*(self.move(m.id, read=m) for m in hosted))
        if hosted:
            log.info(
                "moved %d meeting(s) off %s in %.0f ms",
                len(hosted),
                server.name,
                (time.monotonic() - started) * 1000,
            )

    async def move(
        self, meeting_id: str, *, force: bool = False, read: MeetingRow | None = None
    ) -> bool:
        """Place one meeting again, with a new epoch, unless its host is fine after all.

        With `force` (a drain's evacuation), it moves even off a host that is online.
        `read`: the row as just read with the others of its server (a failover moves them
        all at once: one store read fewer each); the move is stored only if the meeting is
        still as read. True if it moved.
        """
        meeting = read
        if meeting is None:
            async with self._ctx.sessions() as session:
                meeting = await meeting_store.get_meeting(session, meeting_id)
        host = self._ctx.registry.get(meeting.server_name or "") if meeting else None
        if (
            meeting is None
            or meeting.status != MeetingStatus.IN_PROGRESS
            or (not force and host is not None and host.state is ServerState.ONLINE)
        ):
            self.orphans.discard(meeting_id)
            return False
        # No session is held while the room server answers: a failover moves many meetings
        # at once and opening each reads its journal, so held sessions would use up the
        # pool and wait on each other.
        try:
            server, epoch = await self._bookings.open_meeting(meeting)
        except (NoRoomServer, CommandFailed) as exc:
            if meeting_id not in self.orphans:
                log.warning("meeting %s cannot move yet: %s", meeting_id, exc)
            if not force:  # an evacuation retries on its own, at the drain deadline
                self.orphans.add(meeting_id)
            return False
        left = f"moved off {meeting.server_name}" + (
            " (evacuated)" if force else f" ({host.state.value if host else 'removed'})"
        )
        was_epoch = meeting.epoch
        hosting.mark_hosted(meeting, server.name, epoch, None)
        async with self._ctx.sessions() as session:
            moved = await hosting.record_hosted(
                session,
                meeting,
                was=MeetingStatus.IN_PROGRESS,
                was_epoch=was_epoch,
                previous_ended=left,
                recording_allowed=self._ctx.recording_allowed(server.name),
            )
            await session.commit()
        self.orphans.discard(meeting_id)
        if not moved:  # it ended or moved while it opened there
            await self._commands.send_close(server, meeting_id, "the meeting ended while it moved")
            return False
        self._ctx.events.meeting_changed.emit(meeting_id)
        metrics.count_move(forced=force, host=host)
        return True
