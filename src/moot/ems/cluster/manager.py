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
from moot.ems.cluster.registry import Booking, LiveServer, Registry
from moot.ems.cluster.relay import (
    LeaderAway,
    Relay,
    RemoteError,
    meeting_from_wire,
    meeting_to_wire,
)
from moot.ems.cluster.states import ServerStates
from moot.ems.cluster.supervisor import Supervisor
from moot.ems.store import meetings as meeting_store
from moot.ems.store import servers as server_store
from moot.ems.store.db import utcnow
from moot.ems.store.models import MeetingRow
from moot.protocol.control import ServerLimits


class OpenedMeanwhile(Exception):
    """Another EMS node had the leader open this meeting a moment ago: it runs there, and
    that node stores it (a follower's open_meeting)."""

    def __init__(self, server_name: str, epoch: int) -> None:
        super().__init__(f"opened on {server_name} at epoch {epoch} meanwhile")
        self.server_name = server_name
        self.epoch = epoch


# The errors a follower hands back from the leader, as the leader raised them.
_REMOTE_ERRORS: dict[str, type[Exception]] = {
    "NoRoomServer": NoRoomServer,
    "CommandFailed": CommandFailed,
}

__all__ = [
    "ClusterManager",
    "CommandFailed",
    "NoRoomServer",
    "OpenedMeanwhile",
    "limits_of",
]

# After an EMS restart, how long room servers get to reconnect before their
# meetings are moved (on top of the reconnect grace).
RESTART_ALLOWANCE = 10.0
# How long the leader remembers a meeting it opened for a follower (until that node stored it).
OPENED_MEMORY = 30.0


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
        # Several EMS nodes (moot.ems.cluster.node): a follower's way to the leader, which
        # alone takes the actions below; None on the leader and on a node alone (direct).
        self.to_leader: Relay | None = None
        self._opening: dict[str, asyncio.Lock] = {}  # the leader: one opening per meeting
        # meeting id -> (epoch it was opened from, server) for OPENED_MEMORY seconds.
        self._opened: dict[str, tuple[int, str]] = {}

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

    # -- bookings and placement -------------------------------------------
    # On a follower (`to_leader` set) the actions go to the leader; what only reads the
    # registry (placement of a booking, answering, participants) reads the mirror.

    def book(self, meeting: MeetingRow, now: datetime) -> Placement | None:
        choice = self.bookings.book(meeting, now)
        if self.to_leader is not None:
            booking = self.registry.booking_of(meeting.id)
            if booking is not None:  # the leader keeps the bookings: it places against them
                self.to_leader.tell(
                    "book",
                    meeting_id=meeting.id,
                    server=booking.server,
                    hours=list(booking.hours),
                    participants=booking.participants,
                )
        return choice

    def unbook(self, meeting_id: str) -> None:
        self.bookings.unbook(meeting_id)
        if self.to_leader is not None:
            self.to_leader.tell("unbook", meeting_id=meeting_id)

    async def rebook_from(self, server_name: str) -> int:
        if self.to_leader is not None:
            return int(await self._ask("rebook_from", server_name=server_name))
        return await self.bookings.rebook_from(server_name)

    def resize(self, server_name: str, meeting_id: str, expected: int) -> None:
        if self.to_leader is not None:
            self.to_leader.tell(
                "resize", server_name=server_name, meeting_id=meeting_id, expected=expected
            )
            return
        self.bookings.resize(server_name, meeting_id, expected)

    async def open_meeting(self, meeting: MeetingRow) -> tuple[LiveServer, int]:
        if self.to_leader is not None:
            # Placement has one writer, the leader: no pending placement to share.
            answer = await self._ask("open_meeting", meeting=meeting_to_wire(meeting))
            if answer.get("already"):
                raise OpenedMeanwhile(answer["server"], int(answer["epoch"]))
            server = self.registry.get(answer["server"])
            if server is None:  # not mirrored yet: the leader's word is enough to redirect
                server = LiveServer(
                    name=answer["server"], url=answer["url"], limits=limits_default()
                )
            meeting.booked_server = None
            return server, int(answer["epoch"])
        # One opening per meeting at a time, whichever node asked; one asked again from the
        # epoch it was just opened from (two nodes at once) is told where it runs.
        async with self._opening.setdefault(meeting.id, asyncio.Lock()):
            opened = self._opened.get(meeting.id)
            if opened is not None and opened[0] == meeting.epoch:
                raise OpenedMeanwhile(opened[1], meeting.epoch + 1)
            server, epoch = await self.bookings.open_meeting(meeting)
            self._opened[meeting.id] = (meeting.epoch, server.name)
            asyncio.get_running_loop().call_later(OPENED_MEMORY, self._forget_opening, meeting.id)
        return server, epoch

    def _forget_opening(self, meeting_id: str) -> None:
        self._opened.pop(meeting_id, None)
        lock = self._opening.get(meeting_id)
        if lock is not None and not lock.locked():
            del self._opening[meeting_id]

    def capacity_plan(
        self, hours: range
    ) -> tuple[list[ServerCapacity], list[HourPlan], list[PlanWarning]]:
        return self.bookings.capacity_plan(hours)

    # -- drain ------------------------------------------------------------

    def set_drain_deadline(self, name: str, deadline: datetime | None) -> None:
        if self.to_leader is not None:
            self.to_leader.tell("set_drain_deadline", name=name, deadline=deadline)
            return
        self.drain.set_deadline(name, deadline)

    async def evacuate(self, name: str, why: str = "evacuated") -> int:
        if self.to_leader is not None:
            return int(await self._ask("evacuate", name=name, why=why))
        return await self.drain.evacuate(name, why)

    # -- commands and what the room servers report ------------------------

    async def close_meeting(self, meeting_id: str, server_name: str, reason: str) -> None:
        if self.to_leader is not None:
            await self._ask(
                "close_meeting", meeting_id=meeting_id, server_name=server_name, reason=reason
            )
            return
        self._opened.pop(meeting_id, None)  # opened again later: a new opening
        await self.commands.close_meeting(meeting_id, server_name, reason)

    def files_changed(self, meeting_id: str) -> None:
        if self.to_leader is not None:
            self.to_leader.tell("files_changed", meeting_id=meeting_id)
            return
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
        if self.to_leader is not None:
            await self._ask(
                "notify",
                server_name=server_name,
                meeting_id=meeting_id,
                text=text,
                to=to,
                broadcast_id=broadcast_id,
                expires_at=expires_at,
                withdrawn=withdrawn,
            )
            return
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
        if self.to_leader is not None:
            await self._ask("apply_config", server_name=server.name, version=version, values=values)
            return
        await self.commands.apply_config(server, version, values)

    async def disconnect(self, name: str, reason: str) -> None:
        if self.to_leader is not None:
            self.registry.remove(name)
            await self._ask("disconnect", name=name, reason=reason)
            return
        await self.links.disconnect(name, reason)

    def answering(self, server: LiveServer) -> bool:
        """Heard from within two heartbeats. A page is not sent to a server gone silent:
        it may hang (SIGSTOP, a cut network), which closes no connection, and the page
        would wait on it until the failure detector moves the meeting anyway.

        On a follower: the leader heard from it at its last published state."""
        last = server.last_heard_at
        return last is not None and time.monotonic() - last <= 2 * self._ctx.heartbeat

    def participants_in(self, server_name: str, meeting_id: str) -> int:
        """People in a meeting now, as its room server last reported."""
        server = self.registry.get(server_name)
        status = server.meetings.get(meeting_id) if server is not None else None
        return len(status.participants) if status is not None else 0

    # -- several EMS nodes ------------------------------------------------

    async def _ask(self, verb: str, **arguments: Any) -> Any:
        """The leader's answer to a follower; its errors raised as it raised them."""
        assert self.to_leader is not None
        try:
            return await self.to_leader.ask(verb, **arguments)
        except LeaderAway as exc:
            raise CommandFailed(str(exc)) from exc
        except RemoteError as exc:
            if exc.kind == "CommandFailed":
                raise CommandFailed(exc.message, exc.refusal) from exc
            raise _REMOTE_ERRORS.get(exc.kind, CommandFailed)(exc.message) from exc

    def leader_handlers(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """What the leader does for followers: (asked: awaited, told: not awaited)."""

        async def open_meeting(args: dict[str, Any]) -> dict[str, Any]:
            meeting = meeting_from_wire(args["meeting"])
            try:
                server, epoch = await self.open_meeting(meeting)
            except OpenedMeanwhile as exc:
                return {"server": exc.server_name, "epoch": exc.epoch, "already": True}
            except (NoRoomServer, CommandFailed) as exc:
                refusal = exc.refusal if isinstance(exc, CommandFailed) else None
                raise RemoteError(type(exc).__name__, str(exc), refusal) from exc
            return {"server": server.name, "url": server.url, "epoch": epoch}

        async def command(work: Any) -> Any:
            try:
                return await work
            except CommandFailed as exc:
                raise RemoteError("CommandFailed", str(exc), exc.refusal) from exc

        async def apply_config(args: dict[str, Any]) -> None:
            server = self.registry.get(args["server_name"])
            if server is None:
                raise RemoteError("CommandFailed", f"room server {args['server_name']} is unknown")
            await command(self.apply_config(server, args["version"], args["values"]))

        async def notify(args: dict[str, Any]) -> None:
            expires = args["expires_at"]
            await command(
                self.notify(
                    args["server_name"],
                    args["meeting_id"],
                    args["text"],
                    to=args["to"],
                    broadcast_id=args["broadcast_id"],
                    expires_at=datetime.fromisoformat(expires) if expires else None,
                    withdrawn=args["withdrawn"],
                )
            )

        asked: dict[str, Any] = {
            "open_meeting": open_meeting,
            "close_meeting": lambda a: command(
                self.close_meeting(a["meeting_id"], a["server_name"], a["reason"])
            ),
            "notify": notify,
            "apply_config": apply_config,
            "evacuate": lambda a: command(self.evacuate(a["name"], a["why"])),
            "rebook_from": lambda a: self.rebook_from(a["server_name"]),
            "disconnect": lambda a: self.disconnect(a["name"], a["reason"]),
        }

        def book(a: dict[str, Any]) -> None:
            booking = Booking(
                server=a["server"],
                hours=(a["hours"][0], a["hours"][1]),
                participants=a["participants"],
            )
            self.registry.book(a["meeting_id"], booking)

        def set_drain_deadline(a: dict[str, Any]) -> None:
            deadline = a["deadline"]
            self.set_drain_deadline(
                a["name"], datetime.fromisoformat(deadline) if deadline else None
            )

        told: dict[str, Any] = {
            "book": book,
            "unbook": lambda a: self.unbook(a["meeting_id"]),
            "resize": lambda a: self.resize(a["server_name"], a["meeting_id"], a["expected"]),
            "set_drain_deadline": set_drain_deadline,
            "files_changed": lambda a: self.files_changed(a["meeting_id"]),
        }
        return asked, told


def limits_default() -> ServerLimits:
    return ServerLimits(max_active_meetings=0, max_users_per_meeting=1)
