"""Placement: which room server should host a meeting. A pure function.

No I/O and no clock: everything the decision needs comes in as plain data,
so it is deterministic, exhaustively testable and cheap (bench/placement.py).

Load is the share of a server's participant capacity in use: live
participants it last reported plus the expected participants of meetings the
EMS placed there since that report. Counting those pending placements is what
spreads a burst of meetings that start within one report interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class ServerState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class ServerLoad:
    """One room server as placement sees it."""

    name: str
    state: ServerState
    draining: bool
    compatible: bool
    max_active_meetings: int
    max_users_per_meeting: int
    active_meetings: int = 0
    live_participants: int = 0
    pending_meetings: int = 0
    pending_participants: int = 0

    @property
    def capacity(self) -> int:
        """Participants the server is sized for."""
        return max(1, self.max_active_meetings * self.max_users_per_meeting)

    @property
    def load(self) -> float:
        return (self.live_participants + self.pending_participants) / self.capacity

    @property
    def meeting_share(self) -> float:
        return (self.active_meetings + self.pending_meetings) / max(1, self.max_active_meetings)


@dataclass(frozen=True, slots=True)
class MeetingRequest:
    expected_participants: int


@dataclass(frozen=True, slots=True)
class Placement:
    """The outcome: a server name, or None with the reason nobody was chosen."""

    server: str | None
    reason: str = ""


def is_candidate(server: ServerLoad) -> bool:
    return (
        server.state is ServerState.ONLINE
        and not server.draining
        and server.compatible
        and server.active_meetings + server.pending_meetings < server.max_active_meetings
    )


def _rank(server: ServerLoad, meeting: MeetingRequest) -> tuple[float, float, str]:
    after = (
        server.live_participants + server.pending_participants + meeting.expected_participants
    ) / server.capacity
    # The name breaks exact ties so that the same inputs always give the same answer.
    return (after, server.meeting_share, server.name)


def place(servers: Iterable[ServerLoad], meeting: MeetingRequest) -> Placement:
    """Choose the lightest eligible server for `meeting`."""
    best: ServerLoad | None = None
    best_rank: tuple[float, float, str] | None = None
    seen = 0
    for server in servers:
        seen += 1
        if not is_candidate(server):
            continue
        rank = _rank(server, meeting)
        if best_rank is None or rank < best_rank:
            best, best_rank = server, rank
    if best is not None:
        return Placement(best.name)
    if seen == 0:
        return Placement(None, "no room server is registered")
    return Placement(None, "every room server is offline, draining or at its max active meetings")
