"""The live state of every room server, kept in memory.

Reports arrive every second from every server; only changes of state reach
the store. Placement reads `loads()`, which is why placements made since a
server's last report are kept here too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from moot.bus import Link
from moot.placement import ServerLoad, ServerState
from moot.protocol.control import MeetingStatus, ServerLimits, Status


@dataclass(slots=True)
class LiveServer:
    name: str
    url: str
    limits: ServerLimits
    draining: bool = False
    state: ServerState = ServerState.OFFLINE
    link: Link | None = None
    last_report_at: float | None = None
    last_seen_at: datetime | None = None
    meetings: dict[str, MeetingStatus] = field(default_factory=dict)
    # meeting id -> expected participants of every meeting placed here: a running
    # meeting keeps its booking, so an empty room that expects 50 still weighs 50.
    booked: dict[str, int] = field(default_factory=dict)
    logins: int = 0
    cpu_percent: float = 0.0
    memory_percent: float = 0.0

    @property
    def participants(self) -> int:
        return sum(len(m.participants) for m in self.meetings.values())

    @property
    def status_word(self) -> str:
        """What the API and the CLI show."""
        if self.state is ServerState.ONLINE and self.draining:
            return "draining"
        return self.state.value

    def apply_report(self, report: Status) -> None:
        self.meetings = {m.meeting_id: m for m in report.meetings}
        self.logins = report.logins
        self.cpu_percent = report.cpu_percent
        self.memory_percent = report.memory_percent
        self.last_report_at = time.monotonic()
        self.last_seen_at = datetime.now(UTC)

    def to_load(self) -> ServerLoad:
        # Placements the server has not reported yet count at once (burst spreading).
        unreported = [mid for mid in self.booked if mid not in self.meetings]
        live = sum(
            max(len(m.participants), self.booked.get(mid, 0)) for mid, m in self.meetings.items()
        )
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
            pending_participants=sum(self.booked[mid] for mid in unreported),
        )


class Registry:
    """Every room server the EMS knows, by name."""

    def __init__(self) -> None:
        self._servers: dict[str, LiveServer] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._servers

    def get(self, name: str) -> LiveServer | None:
        return self._servers.get(name)

    def put(self, server: LiveServer) -> None:
        self._servers[server.name] = server

    def remove(self, name: str) -> LiveServer | None:
        return self._servers.pop(name, None)

    def all(self) -> list[LiveServer]:
        return sorted(self._servers.values(), key=lambda s: s.name)

    def loads(self) -> list[ServerLoad]:
        return [server.to_load() for server in self._servers.values()]

    def host_of(self, meeting_id: str) -> LiveServer | None:
        for server in self._servers.values():
            if meeting_id in server.meetings or meeting_id in server.booked:
                return server
        return None
