"""The live state of every room server, kept in memory.

Reports arrive every second from every server; only changes of state reach
the store. Placement reads `loads()`, a `LoadTable` with one row per server
(`LiveServer.to_load`), which is why placements made since a server's last
report are kept here too. The table is kept up to date as things change, not
rebuilt per placement: whoever changes a field the row is made from (`state`,
`draining`, `limits`, `meetings`, `booked`, `instant`) calls `Registry.refresh`, or goes
through `report`, `book`, `unbook` or `unbook_all`, which do. Invariant, at
every await point: `loads()` holds `to_load()` of every registered server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from moot.bus import Link
from moot.core.placement import LoadTable, ServerLoad, ServerState
from moot.protocol.control import MediaReport, MeetingStatus, ServerLimits, Status


@dataclass(slots=True)
class LiveServer:
    name: str
    url: str
    limits: ServerLimits
    draining: bool = False
    state: ServerState = ServerState.OFFLINE
    link: Link | None = None
    last_report_at: float | None = None
    # Monotonic time of any message from it: a busy room server's report can be read late
    # behind a burst of its events (a meeting of 500 ending), but those events are no silence.
    last_message_at: float | None = None
    last_seen_at: datetime | None = None
    disconnected_at: float | None = None  # monotonic, while SUSPECT
    meetings: dict[str, MeetingStatus] = field(default_factory=dict)
    # meeting id -> expected participants of every meeting placed here: a running
    # meeting keeps its booking, so an empty room that expects 50 still weighs 50.
    booked: dict[str, int] = field(default_factory=dict)
    # The booked meetings that are instant meetings: they count against `instant_meetings`.
    instant: set[str] = field(default_factory=set)
    logins: int = 0
    # Community services: offered now (a bus, allowed by its configuration), connected
    # clients, and the sign-ins and messages reported since the EMS started (reports).
    community_offered: bool = False
    community_connections: int = 0
    community_signins: int = 0
    community_messages: int = 0
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    # Its audio/video (the report's `media`; None: it reported none): placement and monitor.
    media: MediaReport | None = None

    @property
    def last_heard_at(self) -> float | None:
        """When it last said anything: a report or any other message (monotonic)."""
        times = [t for t in (self.last_report_at, self.last_message_at) if t is not None]
        return max(times, default=None)

    @property
    def participants(self) -> int:
        return sum(len(m.participants) for m in self.meetings.values())

    @property
    def status_word(self) -> str:
        """What the API and the CLI show."""
        if self.state is ServerState.ONLINE and self.draining:
            return "draining" if self.meetings or self.booked else "drained"
        return self.state.value

    def apply_report(self, report: Status) -> None:
        self.meetings = {m.meeting_id: m for m in report.meetings}
        self.logins = report.logins
        self.community_offered = report.community_offered
        self.community_connections = report.community_connections
        self.community_signins += report.community_signins
        self.community_messages += report.community_messages
        self.cpu_percent = report.cpu_percent
        self.memory_percent = report.memory_percent
        self.media = report.media
        self.last_report_at = time.monotonic()
        self.last_seen_at = datetime.now(UTC)

    def to_load(self) -> ServerLoad:
        # Placements the server has not reported yet count at once (burst spreading).
        booked, meetings = self.booked, self.meetings
        unreported = [mid for mid in booked if mid not in meetings]
        live = sum(max(len(m.participants), booked.get(mid, 0)) for mid, m in meetings.items())
        return ServerLoad(
            name=self.name,
            state=self.state,
            draining=self.draining,
            compatible=True,
            max_active_meetings=self.limits.max_active_meetings,
            max_users_per_meeting=self.limits.max_users_per_meeting,
            active_meetings=len(self.meetings),
            live_participants=live,
            pending_meetings=len(unreported),
            pending_participants=sum(booked[mid] for mid in unreported),
            instant_meetings=self.limits.instant_meetings,
            instant_active=len(self.instant),
            location=self.limits.location,
            media=self.media is not None and self.media.usable,
            media_load=self.media.load if self.media is not None else 0.0,
        )


@dataclass(frozen=True, slots=True)
class Booking:
    """A scheduled meeting's booking: its expected participants on a server for its hours."""

    server: str
    hours: tuple[int, int]  # as `moot.core.placement.hour_span`
    participants: int


class Registry:
    """Every room server the EMS knows, by name."""

    def __init__(self) -> None:
        self._servers: dict[str, LiveServer] = {}
        self._table = LoadTable()
        self._bookings: dict[str, Booking] = {}  # by meeting id

    def __contains__(self, name: str) -> bool:
        return name in self._servers

    def get(self, name: str) -> LiveServer | None:
        return self._servers.get(name)

    def put(self, server: LiveServer) -> None:
        self._servers[server.name] = server
        self._table.upsert(server.to_load())

    def remove(self, name: str) -> LiveServer | None:
        server = self._servers.pop(name, None)
        if server is not None:
            self._table.remove(name)  # and its bookings
            for meeting_id in [m for m, r in self._bookings.items() if r.server == name]:
                del self._bookings[meeting_id]
        return server

    def refresh(self, server: LiveServer) -> None:
        """Bring the server's row up to date after a change to what placement reads."""
        if self._servers.get(server.name) is server:  # a replaced object writes nothing
            self._table.upsert(server.to_load())

    def report(self, server: LiveServer, status: Status) -> None:
        server.apply_report(status)
        self.refresh(server)

    def all(self) -> list[LiveServer]:
        return sorted(self._servers.values(), key=lambda s: s.name)

    def loads(self) -> LoadTable:
        """What placement reads: every server's `to_load()`, kept up to date, not rebuilt."""
        return self._table

    # Hosted meetings: meeting id -> expected participants of each meeting placed on a
    # server (its live load). Change them here, not in `server.booked` itself, so that the
    # load row follows; each refreshes the whole row, so it also counts a meeting just
    # popped from `meetings`.

    def host(
        self, server: LiveServer, meeting_id: str, expected: int, *, instant: bool = False
    ) -> None:
        """Count a meeting placed on `server` (again: its new size); `instant` marks an instant
        meeting (kept when counted again)."""
        server.booked[meeting_id] = expected
        if instant:
            server.instant.add(meeting_id)
        self.refresh(server)

    def unhost(self, server: LiveServer, meeting_id: str) -> None:
        server.booked.pop(meeting_id, None)
        server.instant.discard(meeting_id)
        self.refresh(server)

    def unhost_all(self, server: LiveServer) -> None:
        server.booked.clear()
        server.instant.clear()
        self.refresh(server)

    # Bookings: scheduled meetings that have not started, on a server for their hours.

    def book(self, meeting_id: str, booking: Booking) -> None:
        """Book a scheduled meeting's server for its hours (replacing its booking, if any).

        A server the registry no longer knows takes no booking.
        """
        self.unbook(meeting_id)
        if booking.server not in self._servers:
            return
        self._table.reserve(booking.server, booking.hours, booking.participants)
        self._bookings[meeting_id] = booking

    def unbook(self, meeting_id: str) -> Booking | None:
        """Take a meeting's booking back (it starts, moves in time, ends or is deleted)."""
        booking = self._bookings.pop(meeting_id, None)
        if booking is not None:
            self._table.release(booking.server, booking.hours, booking.participants)
        return booking

    def bookings(self) -> dict[str, Booking]:
        """Every booking, by meeting id (a copy)."""
        return dict(self._bookings)

    def booking_of(self, meeting_id: str) -> Booking | None:
        return self._bookings.get(meeting_id)

    def booked(self, hour: int) -> dict[str, tuple[int, int]]:
        """`server -> (participants, meetings)` booked in one hour (`LoadTable.reserved`)."""
        return self._table.reserved(hour)

    def forget_before(self, hour: int) -> None:
        """Hours before `hour` weigh on no decision: drop their bookings."""
        self._table.forget_before(hour)
        for meeting_id in [m for m, r in self._bookings.items() if r.hours[1] <= hour]:
            del self._bookings[meeting_id]

    def host_of(self, meeting_id: str) -> LiveServer | None:
        for server in self._servers.values():
            if meeting_id in server.meetings or meeting_id in server.booked:
                return server
        return None
