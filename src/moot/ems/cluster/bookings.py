"""Bookings and placement: a scheduled meeting's booking on a server for its hours, the
placement of a meeting that starts (or moves) and its live load there, the capacity plan."""

from __future__ import annotations

import logging
from datetime import datetime

from moot.core.capacity_plan import HourPlan, PlanWarning, ServerCapacity, plan
from moot.core.media_rights import needs_media
from moot.core.meeting_status import MeetingStatus
from moot.core.placement import HOUR, MeetingRequest, Placement, ServerState, hour_span, place
from moot.ems import metrics
from moot.ems.cluster.commands import CommandFailed, Commands
from moot.ems.cluster.context import ClusterContext
from moot.ems.cluster.registry import Booking, LiveServer
from moot.ems.store import meetings as meeting_store
from moot.ems.store.db import utcnow
from moot.ems.store.models import MeetingRow

log = logging.getLogger("moot.ems.cluster")


class NoRoomServer(Exception):
    """No room server can take the meeting; the message says why."""


def booking_of(meeting: MeetingRow) -> Booking:
    """A scheduled meeting's booking, on the server it is booked on."""
    return Booking(
        server=meeting.booked_server or "",
        hours=hour_span(meeting.start_at, meeting.end_at),
        participants=meeting.expected_participants,
    )


class Bookings:
    def __init__(self, ctx: ClusterContext, commands: Commands) -> None:
        self._ctx = ctx
        self._commands = commands
        self._past_hour = 0  # the hour up to which bookings were forgotten
        self.unbooked = False  # some scheduled meeting may have found no server to book

    def restore(self, meeting: MeetingRow) -> None:
        """At start-up: a scheduled meeting's booking, where it was booked (the servers are
        not connected yet, so placing it again now would find no server at all)."""
        if meeting.booked_server and meeting.booked_server in self._ctx.registry:
            self._ctx.registry.book(meeting.id, booking_of(meeting))
        else:
            self.unbooked = True  # booked when a server is online to take it

    def now_hour(self, now: datetime) -> int:
        hour = int(now.timestamp()) // HOUR
        if hour != self._past_hour:  # once an hour: the past weighs on no decision
            self._past_hour = hour
            self._ctx.registry.forget_before(hour)
        return hour

    def book(self, meeting: MeetingRow, now: datetime) -> Placement | None:
        """Book a scheduled meeting's expected participants on a server for its hours.

        Sets `meeting.booked_server` for the caller to store, replacing an earlier booking.
        No room anywhere still books it (the least overloaded server, with a capacity
        warning); only when no server may take it at all is it left unbooked, to be
        placed when it starts. None for a meeting that is not scheduled ahead.
        """
        self._ctx.registry.unbook(meeting.id)
        meeting.booked_server = None
        if meeting.status != MeetingStatus.SCHEDULED or meeting.instant or meeting.end_at <= now:
            return None
        hours = hour_span(meeting.start_at, meeting.end_at)
        choice = place(
            self._ctx.registry.loads(),
            MeetingRequest(
                expected_participants=meeting.expected_participants,
                location=meeting.location,
                location_required=meeting.location_required,
                needs_media=needs_media(meeting.tools),
                hours=hours,
                live=hours[0] <= self.now_hour(now),  # it starts within this hour
            ),
        )
        if choice.server is None:
            log.info("meeting %s is not booked on any server: %s", meeting.id, choice.reason)
            self.unbooked = True
            return choice
        meeting.booked_server = choice.server
        self._ctx.registry.book(meeting.id, booking_of(meeting))
        if choice.warning:
            when = f"{meeting.start_at:%Y-%m-%d %H:%M}-{meeting.end_at:%H:%M} UTC"
            self._ctx.capacity.warn(
                choice.warning_kind,
                f"booking {when}: {choice.warning}",
                meeting_id=meeting.id,
                server_name=choice.server,
            )
        return choice

    async def book_unbooked(self) -> None:
        """Book the scheduled meetings that no server could take when they were booked."""
        async with self._ctx.sessions() as session:
            now = utcnow()
            rows = await meeting_store.unbooked_scheduled(session, now)
            for row in rows:
                self.book(row, now)
            await session.commit()
        booked = sum(1 for row in rows if row.booked_server)
        if booked:
            log.info("booked %d scheduled meeting(s) that had no server", booked)

    async def rebook_from(self, server_name: str) -> int:
        """Book elsewhere the scheduled meetings booked on a server that was removed."""
        async with self._ctx.sessions() as session:
            rows = await meeting_store.booked_on(session, server_name)
            now = utcnow()
            for row in rows:
                self.book(row, now)
            await session.commit()
        if rows:
            log.info("booked %d scheduled meeting(s) of %s elsewhere", len(rows), server_name)
        return len(rows)

    def unbook(self, meeting_id: str) -> None:
        """Take a scheduled meeting's booking back (it was deleted or ended)."""
        self._ctx.registry.unbook(meeting_id)

    def capacity_plan(
        self, hours: range
    ) -> tuple[list[ServerCapacity], list[HourPlan], list[PlanWarning]]:
        """Booked against available capacity over `hours` (`moot.core.capacity_plan`)."""
        servers = [
            ServerCapacity(
                name=s.name,
                participants=s.limits.max_active_meetings * s.limits.max_users_per_meeting,
                meetings=s.limits.max_active_meetings,
                takes_meetings=not s.draining
                and s.state in (ServerState.ONLINE, ServerState.SUSPECT),
            )
            for s in self._ctx.registry.all()
        ]
        self.now_hour(utcnow())
        hour_plans, warnings = plan(servers, self._ctx.registry.booked, hours)
        return servers, hour_plans, warnings

    async def open_meeting(self, meeting: MeetingRow) -> tuple[LiveServer, int]:
        """Place the meeting and open it there; returns the host and the new epoch."""
        epoch = meeting.epoch + 1
        command = await self._commands.open_command(meeting, epoch)
        # From here to booking, no await: decisions in a burst see each other's bookings.
        # Instant-meeting limits apply to starting one; a running one that moves is placed
        # like a scheduled meeting (limits never stop a meeting), but still counts as instant.
        # Its own booking gives way to what it weighs now; the others' weigh over its hours.
        now = utcnow()
        booking = self._ctx.registry.unbook(meeting.id)
        hour = self.now_hour(now)
        choice = place(
            self._ctx.registry.loads(),
            MeetingRequest(
                expected_participants=meeting.expected_participants,
                instant=meeting.instant and meeting.status == MeetingStatus.SCHEDULED,
                location=meeting.location,
                location_required=meeting.location_required,
                needs_media=needs_media(meeting.tools),
                hours=(hour, max(hour + 1, hour_span(now, meeting.end_at)[1])),
            ),
        )
        metrics.count_placement(choice)
        if choice.server is None:
            if booking is not None:
                self._ctx.registry.book(meeting.id, booking)
            raise NoRoomServer(choice.reason)
        server = self._ctx.registry.get(choice.server)
        assert server is not None
        self._ctx.registry.host(
            server, meeting.id, meeting.expected_participants, instant=meeting.instant
        )
        try:
            await self._commands.send(server, command)
        except CommandFailed as exc:
            self._ctx.registry.unhost(server, meeting.id)
            if booking is not None:
                self._ctx.registry.book(meeting.id, booking)
            if exc.refusal is None:
                await self._commands.close_unanswered(server, meeting.id)
            why = "it did not answer in time" if exc.refusal is None else exc.refusal
            raise CommandFailed(
                f"room server {server.name} could not open the meeting ({why}); try again shortly",
                exc.refusal,
            ) from exc
        meeting.booked_server = None
        log.info("meeting %s opened on %s (epoch %d)", meeting.id, server.name, epoch)
        if choice.warning:
            self._ctx.capacity.warn(
                choice.warning_kind, choice.warning, meeting_id=meeting.id, server_name=server.name
            )
        return server, epoch

    def resize(self, server_name: str, meeting_id: str, expected: int) -> None:
        """A running meeting now expects another number of participants."""
        server = self._ctx.registry.get(server_name)
        if server is not None and meeting_id in server.booked:
            self._ctx.registry.host(server, meeting_id, expected)
