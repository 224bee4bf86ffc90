"""Placement: which room server should host a meeting. A pure function.

No I/O and no clock: everything the decision needs comes in as plain data,
so it is deterministic, exhaustively testable and cheap (bench/placement.py).
That data is a `LoadTable`, one `ServerLoad` row per room server, which the
EMS's registry keeps up to date as reports arrive and meetings are placed, so a
decision reads the table and never rebuilds it.

Load is the share of a server's participant capacity in use: live
participants it last reported plus the expected participants of meetings the
EMS placed there since that report. Counting those pending placements is what
spreads a burst of meetings that start within one report interval.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class ServerState(StrEnum):
    """Only ONLINE servers take meetings (docs/architecture.md, failure detection)."""

    ONLINE = "online"
    SUSPECT = "suspect"  # its control connection dropped; it may come back within the grace
    FAILED = "failed"  # gone: its meetings were moved
    OFFLINE = "offline"  # not connected, and nothing of it to move (never came, or left cleanly)


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


def _used(row: ServerLoad) -> float:
    """The `used` column: participants counted against the capacity, +inf if not a candidate."""
    if not is_candidate(row):
        return math.inf
    return float(row.live_participants + row.pending_participants)


class LoadTable:
    """Every room server's `ServerLoad`, one row per name, kept as columns for `place`.

    The owner (the EMS's registry) upserts a server's row whenever something placement
    reads changes, that is on each report and on each placement, so deciding never
    rebuilds 1,000 rows. The rows are kept in name order beside three float64 columns:

    - `used`: live plus pending participants, or +inf when the server is not a candidate;
    - `capacity`: `ServerLoad.capacity`;
    - `share`: `ServerLoad.meeting_share`, the first tie-break.

    `lightest` then ranks every server at once with numpy, with exactly the result of
    comparing `((used + expected) / capacity, share, name)` tuples in Python: the counts
    are integers, exact in a float64 below 2**53, and IEEE division is correctly rounded
    like Python's `int / int`. Name order makes the first of several tied rows the one
    with the smallest name. An upsert of a known server costs three array stores; adding
    or removing a server copies the columns (rare: servers are added by an operator).
    """

    __slots__ = ("_capacity", "_names", "_rows", "_share", "_slots", "_used")

    def __init__(self, rows: Iterable[ServerLoad] = ()) -> None:
        self._rows: dict[str, ServerLoad] = {row.name: row for row in rows}
        self._names: list[str] = sorted(self._rows)
        ordered = [self._rows[name] for name in self._names]
        self._used = np.array([_used(row) for row in ordered], dtype=np.float64)
        self._capacity = np.array([row.capacity for row in ordered], dtype=np.float64)
        self._share = np.array([row.meeting_share for row in ordered], dtype=np.float64)
        self._slots: dict[str, int] = {name: i for i, name in enumerate(self._names)}

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._slots

    def __iter__(self) -> Iterator[ServerLoad]:
        """The rows, in name order."""
        return (self._rows[name] for name in self._names)

    def get(self, name: str) -> ServerLoad | None:
        return self._rows.get(name)

    def upsert(self, row: ServerLoad) -> None:
        """Add the server's row, or replace the one with the same name."""
        used, capacity, share = _used(row), row.capacity, row.meeting_share
        slot = self._slots.get(row.name)
        if slot is None:
            slot = bisect.bisect_left(self._names, row.name)
            self._names.insert(slot, row.name)
            self._used = np.insert(self._used, slot, used)
            self._capacity = np.insert(self._capacity, slot, capacity)
            self._share = np.insert(self._share, slot, share)
            self._renumber(slot)
        else:
            self._used[slot] = used
            self._capacity[slot] = capacity
            self._share[slot] = share
        self._rows[row.name] = row

    def remove(self, name: str) -> None:
        """Forget the server's row; a no-op for an unknown name."""
        slot = self._slots.pop(name, None)
        if slot is None:
            return
        del self._rows[name]
        del self._names[slot]
        self._used = np.delete(self._used, slot)
        self._capacity = np.delete(self._capacity, slot)
        self._share = np.delete(self._share, slot)
        self._renumber(slot)

    def _renumber(self, start: int) -> None:
        for i in range(start, len(self._names)):
            self._slots[self._names[i]] = i

    def lightest(self, expected: int) -> str | None:
        """The name of the candidate that `place` chooses for `expected` participants."""
        if not self._names:
            return None
        after = (self._used + expected) / self._capacity
        best = int(after.argmin())  # the first of the lightest, in name order
        load = after[best]
        if load == math.inf:
            return None  # no candidate
        if (after[best + 1 :] == load).any():
            tied = np.flatnonzero(after == load)
            best = int(tied[self._share[tied].argmin()])
        return self._names[best]


def place(servers: LoadTable | Iterable[ServerLoad], meeting: MeetingRequest) -> Placement:
    """Choose the lightest eligible server for `meeting`.

    The lightest is the candidate (`is_candidate`) with the smallest load once it takes
    the meeting, `(live + pending + expected) / capacity`; ties go to the smaller
    `meeting_share`, then to the smaller name, so the same inputs always give the same
    answer. `servers` is normally the registry's `LoadTable`; any other iterable of rows
    is put in a table first (rows are told apart by name: a later row with the same name
    replaces an earlier one).
    """
    table = servers if isinstance(servers, LoadTable) else LoadTable(servers)
    name = table.lightest(meeting.expected_participants)
    if name is not None:
        return Placement(name)
    if not len(table):
        return Placement(None, "no room server is registered")
    return Placement(None, "every room server is offline, draining or at its max active meetings")
