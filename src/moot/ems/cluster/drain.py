"""Drain: a draining server takes no new meetings; at its deadline (or at once, with
evacuate) the meetings still running there move to other servers."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from moot.core.placement import ServerState
from moot.ems.cluster.commands import Commands
from moot.ems.cluster.context import ClusterContext
from moot.ems.cluster.failover import Failover
from moot.ems.cluster.registry import LiveServer
from moot.ems.store import meetings as meeting_store
from moot.ems.store import servers as server_store
from moot.ems.store.db import utcnow

log = logging.getLogger("moot.ems.cluster")

# How soon a drain deadline's evacuation tries again when a meeting could not move.
DRAIN_RETRY = 2.0
# Meetings an evacuation moves at once: a drain is not urgent, so it leaves most of the
# store's pool (8 connections on SQLite) to the meetings that keep running meanwhile.
EVACUATION_CONCURRENCY = 3


class Drain:
    def __init__(self, ctx: ClusterContext, commands: Commands, failover: Failover) -> None:
        self._ctx = ctx
        self._commands = commands
        self._failover = failover
        # Draining servers whose meetings move at a deadline (until none is left there).
        self._deadlines: dict[str, datetime] = {}
        self._next_try: dict[str, float] = {}
        self._evacuations: dict[str, asyncio.Lock] = {}

    def set_deadline(self, name: str, deadline: datetime | None) -> None:
        """From `deadline` on, the meetings still running on the draining server move.

        None: no deadline (the drain ended, or the server is gone).
        """
        self._next_try.pop(name, None)
        if deadline is None:
            self._deadlines.pop(name, None)
        else:
            self._deadlines[name] = deadline

    def check(self, now: float) -> None:
        """Start evacuating each draining server whose deadline has passed."""
        if not self._deadlines:
            return
        wall = utcnow()
        for name, deadline in list(self._deadlines.items()):
            if deadline > wall or now < self._next_try.get(name, 0.0):
                continue
            server = self._ctx.registry.get(name)
            if server is None or not server.draining:
                self.set_deadline(name, None)
                continue
            if server.state is ServerState.SUSPECT:  # failure detection decides first
                continue
            self._next_try[name] = float("inf")  # until this attempt is over
            self._ctx.in_background(self._drain_deadline_passed(name, deadline))

    async def _drain_deadline_passed(self, name: str, deadline: datetime) -> None:
        left: int | None = None
        try:
            left = await self.evacuate(name, why="its drain deadline passed")
        except Exception:  # tried again shortly
            log.exception("could not evacuate room server %s at its drain deadline", name)
        if self._deadlines.get(name) is not deadline:
            return  # the drain ended or got another deadline meanwhile
        if left == 0:  # done: nothing more can come, a draining server gets no meeting
            self._deadlines.pop(name, None)
            self._next_try.pop(name, None)
        else:
            self._next_try[name] = time.monotonic() + DRAIN_RETRY

    async def evacuate(self, name: str, why: str = "evacuated") -> int:
        """Move every meeting in progress off a draining server, even an online one.

        They move the way failover moves them (new host, epoch + 1, journal replayed);
        the old host then closes them with `moved`, so their clients rejoin. A meeting
        no other server can take now stays where it is. Returns how many stayed.
        """
        server = self._ctx.registry.get(name)
        if server is not None and not server.draining:
            # Placement could pick it again: the "moved" meeting would then be closed.
            raise ValueError(f"room server {name} must be draining to be evacuated")
        async with self._evacuations.setdefault(name, asyncio.Lock()):
            async with self._ctx.sessions() as session:
                hosted = await meeting_store.meetings_on_server(session, name)
            if not hosted:
                return 0
            started = time.monotonic()
            slots = asyncio.Semaphore(EVACUATION_CONCURRENCY)

            async def move(meeting_id: str) -> bool:
                async with slots:
                    if not await self._failover.move(meeting_id, force=True):
                        return False
                if server is not None:
                    await self.moved_away(server, meeting_id)
                return True

            gone = sum(await asyncio.gather(*(move(m.id) for m in hosted)))
            async with self._ctx.sessions() as session:  # not moved: ended meanwhile, or stayed
                left = await server_store.count_active_meetings(session, name)
            log.log(
                logging.WARNING if left else logging.INFO,
                "moved %d meeting(s) off %s (%s) in %.0f ms%s",
                gone,
                name,
                why,
                (time.monotonic() - started) * 1000,
                f"; {left} could not move yet: no other room server can take them" if left else "",
            )
            return left

    async def moved_away(self, server: LiveServer, meeting_id: str) -> None:
        """The meeting runs elsewhere now: its old host closes it, telling clients to rejoin."""
        async with self._ctx.sessions() as session:
            meeting = await meeting_store.get_meeting(session, meeting_id)
        if meeting is not None and meeting.server_name == server.name:
            return  # it runs here again: never close a meeting on its host
        if server.link is not None:
            await self._commands.send_close(server, meeting_id, "this meeting moved", moved=True)
        else:  # told when it reconnects (fencing)
            server.meetings.pop(meeting_id, None)
            self._ctx.registry.unhost(server, meeting_id)
