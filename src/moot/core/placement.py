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

Bookings (resource booking): a scheduled meeting reserves its expected
participants on a server for every hour its time span touches, in the same
table. A meeting asks about its own span (`MeetingRequest.hours`): each server
then weighs as if the peak of its reservations over those hours were pending
placements (`LoadTable.rows_for`). A meeting that starts now adds them to the
live load; one booked for later (`live=False`) sees only the reservations.

The rules (docs/architecture.md, "Placement"), in the order they decide:

1. A server that may not take the meeting at all is never chosen: not online,
   draining, of another protocol version, outside a *required* location, and,
   for an instant meeting, at its max active meetings or its instant-meeting
   limit (`instant_meetings`: None = unlimited, 0 = scheduled meetings only).
2. For a meeting with audio/video or screen sharing, a server whose media server (Janus)
   works beats one whose does not (a meeting is never refused for that: without any, it
   runs without media and its page says so).
3. A server with room (active + pending meetings < max active meetings, and at
   most 100% of its participant capacity once it takes the meeting) beats one
   without: no server goes over a limit while another has room.
4. Then a server whose max users per meeting allows the expected participants.
5. Then a server in the meeting's *preferred* location.
6. Then the lightest: the lowest load once it takes the meeting (for a meeting with
   media, the higher of that load and its media load, so the lower media load is
   preferred). Among servers without room, the least overloaded: the higher of that
   and its meeting share once it takes the meeting, then that load.
7. Ties go to the lower meeting share, then to the smaller name.

A choice that breaks rule 3 or 4 (nothing better was left) comes with a capacity
warning. Only a meeting that no server may take at all is refused, with the reason;
for a scheduled meeting that means no server is online, not draining (and in its
required location).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt


class ServerState(StrEnum):
    """Only ONLINE servers take meetings (docs/architecture.md, failure detection)."""

    ONLINE = "online"
    SUSPECT = "suspect"  # its control connection dropped; it may come back within the grace
    FAILED = "failed"  # gone: its meetings were moved
    OFFLINE = "offline"  # not connected, and nothing of it to move (never came, or left cleanly)


class WarningKind(StrEnum):
    """What a capacity warning is about (the `kind` column of `capacity_warnings`)."""

    NO_ROOM = "no_room"  # placed on a server over its limits: no server had room
    MEETING_TOO_LARGE = "meeting_too_large"  # more expected than any fitting server allows
    PARTICIPANTS_OVER_LIMIT = "participants_over_limit"  # a running meeting grew past a limit


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
    instant_meetings: int | None = None  # the setting: None = unlimited, 0 = none
    instant_active: int = 0  # instant meetings it hosts (booked), reported or not
    location: str = ""
    media: bool = True  # its SFU (Janus) works and is under its media limits
    # The higher share of its media limits in use (streams, bitrate); 0 without limits.
    media_load: float = 0.0

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

    @property
    def meetings_full(self) -> bool:
        """At its max active meetings, counting placements it has not reported yet."""
        return self.active_meetings + self.pending_meetings >= self.max_active_meetings

    @property
    def instant_full(self) -> bool:
        """Its instant-meeting setting allows no more instant meetings now."""
        return self.instant_meetings is not None and self.instant_active >= self.instant_meetings

    @property
    def open(self) -> bool:
        """Online, not draining and compatible: it may take meetings at all."""
        return self.state is ServerState.ONLINE and not self.draining and self.compatible


@dataclass(frozen=True, slots=True)
class MeetingRequest:
    expected_participants: int
    instant: bool = False  # an instant meeting starting now: refused rather than squeezed in
    location: str = ""  # "" = anywhere
    location_required: bool = False  # True: never outside `location`; False: preferred
    # Whole hours since the epoch (UTC), first to end (exclusive), over which the servers'
    # reservations weigh (`hour_span`); None: reservations are not counted.
    hours: tuple[int, int] | None = None
    # True: the span begins now, so live load counts too; False: booked for later.
    live: bool = True
    # It has audio/video or screen sharing: a server whose media works comes first.
    needs_media: bool = False


HOUR = 3600


def hour_span(start: datetime, end: datetime) -> tuple[int, int]:
    """The hours (since the epoch, UTC) that `[start, end)` touches: `(first, end)`."""
    first = int(start.timestamp()) // HOUR
    last = -(-int(end.timestamp()) // HOUR)  # ceiling: 9:00-10:00 touches hour 9 only
    return first, max(first + 1, last)


@dataclass(frozen=True, slots=True)
class Placement:
    """The outcome: a server name, or None with the reason nobody was chosen.

    `warning` (with its `warning_kind`) is set when the server had to go over a limit.
    """

    server: str | None
    reason: str = ""
    warning: str = ""
    warning_kind: str = ""


def _scoped(server: ServerLoad, meeting: MeetingRequest) -> bool:
    """Inside the meeting's location, if the meeting requires one."""
    return not (meeting.location_required and meeting.location) or (
        server.location == meeting.location
    )


def is_candidate(server: ServerLoad, meeting: MeetingRequest) -> bool:
    """May the server take the meeting at all (rule 1)? Only candidates are ever chosen."""
    return (
        server.open
        and _scoped(server, meeting)
        and not (meeting.instant and (server.meetings_full or server.instant_full))
    )


def _after(server: ServerLoad, meeting: MeetingRequest) -> float:
    """The server's load once it takes the meeting."""
    used = server.live_participants + server.pending_participants + meeting.expected_participants
    return used / server.capacity


def has_room(server: ServerLoad, meeting: MeetingRequest) -> bool:
    """Under its max active meetings and, with the meeting, at most at 100% of its capacity."""
    return not server.meetings_full and _after(server, meeting) <= 1.0


def fits(server: ServerLoad, meeting: MeetingRequest) -> bool:
    """Its max users per meeting allows the meeting's expected participants."""
    return meeting.expected_participants <= server.max_users_per_meeting


def capacity_warning(
    server: ServerLoad, meeting: MeetingRequest, *, room: bool, fit: bool
) -> tuple[str, str]:
    """`(kind, message)` of the warning for placing `meeting` on `server`; ("", "") if none."""
    parts = []
    if not room:
        meetings = server.active_meetings + server.pending_meetings + 1
        parts.append(
            f"no room server has room for it: {server.name} takes it over its limits "
            f"({meetings} of {server.max_active_meetings} meetings, "
            f"{_after(server, meeting):.0%} of its participant capacity)"
        )
    if not fit:
        parts.append(
            f"{meeting.expected_participants} expected participants exceed {server.name}'s "
            f"max users per meeting ({server.max_users_per_meeting}) and no server that allows "
            "them has room"
        )
    if not parts:
        return "", ""
    kind = WarningKind.NO_ROOM if not room else WarningKind.MEETING_TOO_LARGE
    return kind.value, "; ".join(parts)


def _words(items: Iterable[str]) -> str:
    unique = list(dict.fromkeys(items))
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " or " + unique[-1]


def refusal(servers: Iterable[ServerLoad], meeting: MeetingRequest) -> str:
    """Why no server may take the meeting (when `is_candidate` holds for none): specific.

    Only runs when nobody was chosen, so it may take its time.
    """
    rows = list(servers)
    if not rows:
        return "no room server is registered"
    scope = ""
    if meeting.location_required and meeting.location:
        scope = f' in location "{meeting.location}"'
        rows = [s for s in rows if s.location == meeting.location]
        if not rows:
            return f"no room server{scope}"
    why = []
    for s in rows:
        if s.state is not ServerState.ONLINE:
            why.append("offline")
        elif s.draining:
            why.append("draining")
        elif not s.compatible:
            why.append("of another protocol version")
        elif s.meetings_full:
            why.append("at its max active meetings")
        elif s.instant_full:
            why.append("at its instant-meeting limit")
    if not why:  # not reached: `place` asks only when nobody may take the meeting
        return "no room server can take it"
    return f"every room server{scope} is {_words(sorted(set(why), key=_REASON_ORDER.index))}"


_REASON_ORDER = [
    "offline",
    "draining",
    "of another protocol version",
    "at its max active meetings",
    "at its instant-meeting limit",
]


_Floats = npt.NDArray[np.float64]
_Bools = npt.NDArray[np.bool_]
_Ints = npt.NDArray[np.int64]


class _View:
    """The columns one decision ranks by: the table's own, or with reservations added."""

    __slots__ = ("free", "full", "meetings_after", "share", "used")

    def __init__(
        self, used: _Floats, free: _Floats, share: _Floats, full: _Bools, meetings_after: _Floats
    ) -> None:
        self.used, self.free, self.share = used, free, share
        self.full, self.meetings_after = full, meetings_after


# The LoadTable's columns, in the order of `LoadTable._values` (and of its docstring).
_COLUMN_NAMES = (
    "_used",
    "_free",
    "_capacity",
    "_share",
    "_full",
    "_meetings_after",
    "_max_users",
    "_instant_full",
    "_location",
    "_meetings",
    "_max_active",
    "_open",
    "_media",
    "_media_load",
)


class LoadTable:
    """Every room server's `ServerLoad`, one row per name, kept as columns for `place`.

    The owner (the EMS's registry) upserts a server's row whenever something placement
    reads changes, that is on each report and on each placement, so deciding never
    rebuilds 1,000 rows. The rows are kept in name order beside numpy columns:

    - `used`: live plus pending participants, or +inf when the server is not open
      (offline, draining or of another protocol version);
    - `free`: the same, but +inf also when it is at its max active meetings;
    - `capacity`: `ServerLoad.capacity`;
    - `share`: `ServerLoad.meeting_share`, the first tie-break;
    - `full`: at its max active meetings (`meetings_full`);
    - `meetings_after`: `(active + pending + 1) / max_active_meetings`, +inf for 0;
    - `max_users`: max users per meeting;
    - `instant_full`: its instant-meeting setting allows no more now;
    - `location`: a small integer per distinct location tag;
    - `meetings`, `max_active`, `open`: active + pending meetings, max active meetings,
      and whether it is open, from which a decision over reservations derives the rest.

    Reservations (bookings of scheduled meetings) are kept per hour: for each hour with
    any, the participants and the meetings reserved on each server, as two columns in
    slot order. A decision over a span takes each server's peak over its hours.

    `place` then ranks every server at once with numpy, with exactly the result of
    comparing the reference's tuples in Python: the counts are integers, exact in a
    float64 below 2**53, and IEEE division is correctly rounded like Python's
    `int / int`. Name order makes the first of several tied rows the one with the
    smallest name. An upsert of a known server costs a few array stores; adding or
    removing a server copies the columns (rare: servers are added by an operator).
    """

    __slots__ = (
        "_capacity",
        "_free",
        "_full",
        "_instant_full",
        "_location",
        "_location_codes",
        "_max_active",
        "_max_users",
        "_media",
        "_media_load",
        "_meetings",
        "_meetings_after",
        "_names",
        "_open",
        "_reserved",
        "_rows",
        "_share",
        "_since",
        "_slots",
        "_used",
    )

    def __init__(self, rows: Iterable[ServerLoad] = ()) -> None:
        self._rows: dict[str, ServerLoad] = {row.name: row for row in rows}
        self._names: list[str] = sorted(self._rows)
        self._location_codes: dict[str, int] = {}
        columns = list(zip(*(self._values(self._rows[n]) for n in self._names), strict=True))
        if not columns:
            columns = [()] * len(_COLUMN_NAMES)
        self._used: _Floats = np.array(columns[0], dtype=np.float64)
        self._free: _Floats = np.array(columns[1], dtype=np.float64)
        self._capacity: _Floats = np.array(columns[2], dtype=np.float64)
        self._share: _Floats = np.array(columns[3], dtype=np.float64)
        self._full: _Bools = np.array(columns[4], dtype=np.bool_)
        self._meetings_after: _Floats = np.array(columns[5], dtype=np.float64)
        self._max_users: _Ints = np.array(columns[6], dtype=np.int64)
        self._instant_full: _Bools = np.array(columns[7], dtype=np.bool_)
        self._location: _Ints = np.array(columns[8], dtype=np.int64)
        self._meetings: _Floats = np.array(columns[9], dtype=np.float64)
        self._max_active: _Floats = np.array(columns[10], dtype=np.float64)
        self._open: _Bools = np.array(columns[11], dtype=np.bool_)
        self._media: _Bools = np.array(columns[12], dtype=np.bool_)
        self._media_load: _Floats = np.array(columns[13], dtype=np.float64)
        self._slots: dict[str, int] = {name: i for i, name in enumerate(self._names)}
        # hour -> (participants, meetings) reserved per slot
        self._reserved: dict[int, tuple[_Floats, _Floats]] = {}
        self._since = -(2**62)  # hours before it were forgotten (`forget_before`)

    def _values(
        self, row: ServerLoad
    ) -> tuple[float, float, int, float, bool, float, int, bool, int, int, int, bool, bool, float]:
        """The row's value in each column, in the order of `_columns` (and of its docstring)."""
        meetings = row.active_meetings + row.pending_meetings
        used = float(row.live_participants + row.pending_participants) if row.open else math.inf
        return (
            used,
            math.inf if row.meetings_full else used,
            row.capacity,
            row.meeting_share,
            row.meetings_full,
            (meetings + 1) / row.max_active_meetings if row.max_active_meetings > 0 else math.inf,
            row.max_users_per_meeting,
            row.instant_full,
            self._location_codes.setdefault(row.location, len(self._location_codes)),
            meetings,
            row.max_active_meetings,
            row.open,
            row.media,
            row.media_load,
        )

    def _columns(self) -> list[np.ndarray]:
        return [getattr(self, name) for name in _COLUMN_NAMES]

    def _set_columns(self, columns: list[np.ndarray]) -> None:
        for name, column in zip(_COLUMN_NAMES, columns, strict=True):
            setattr(self, name, column)

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
        values = self._values(row)
        slot = self._slots.get(row.name)
        if slot is None:
            slot = bisect.bisect_left(self._names, row.name)
            self._names.insert(slot, row.name)
            self._set_columns(
                [np.insert(c, slot, v) for c, v in zip(self._columns(), values, strict=True)]
            )
            self._reserved = {
                h: (np.insert(p, slot, 0.0), np.insert(m, slot, 0.0))
                for h, (p, m) in self._reserved.items()
            }
            self._renumber(slot)
        else:
            for column, value in zip(self._columns(), values, strict=True):
                column[slot] = value
        self._rows[row.name] = row

    def remove(self, name: str) -> None:
        """Forget the server's row and its reservations; a no-op for an unknown name."""
        slot = self._slots.pop(name, None)
        if slot is None:
            return
        del self._rows[name]
        del self._names[slot]
        self._set_columns([np.delete(c, slot) for c in self._columns()])
        self._reserved = {
            h: (np.delete(p, slot), np.delete(m, slot)) for h, (p, m) in self._reserved.items()
        }
        self._renumber(slot)

    def _renumber(self, start: int) -> None:
        for i in range(start, len(self._names)):
            self._slots[self._names[i]] = i

    # -- reservations ------------------------------------------------------

    def reserve(
        self, name: str, hours: tuple[int, int], participants: int, meetings: int = 1
    ) -> None:
        """Reserve `participants` (and `meetings`) on a known server for each of `hours`.

        A negative amount takes a reservation back (`release`).
        """
        slot = self._slots[name]
        size = len(self._names)
        for hour in range(max(hours[0], self._since), hours[1]):
            column = self._reserved.get(hour)
            if column is None:
                column = self._reserved[hour] = (np.zeros(size), np.zeros(size))
            column[0][slot] += participants
            column[1][slot] += meetings
            if not column[1].any():
                del self._reserved[hour]

    def release(
        self, name: str, hours: tuple[int, int], participants: int, meetings: int = 1
    ) -> None:
        """Take back what `reserve` reserved with the same arguments."""
        if name in self._slots:
            self.reserve(name, hours, -participants, -meetings)

    def forget_before(self, hour: int) -> None:
        """Drop the reservations of hours before `hour` (the past weighs on no decision);
        from now on, reserving and releasing leave those hours alone."""
        self._since = max(self._since, hour)
        for past in [h for h in self._reserved if h < hour]:
            del self._reserved[past]

    def reserved(self, hour: int) -> dict[str, tuple[int, int]]:
        """`name -> (participants, meetings)` reserved in one hour, for servers with any."""
        column = self._reserved.get(hour)
        if column is None:
            return {}
        participants, meetings = column
        return {
            self._names[i]: (int(participants[i]), int(meetings[i]))
            for i in np.flatnonzero(meetings)
        }

    def _peak(self, hours: tuple[int, int]) -> tuple[_Floats, _Floats] | None:
        """Each server's peak reserved participants and meetings over `hours`; None if none."""
        columns = [self._reserved[h] for h in range(*hours) if h in self._reserved]
        if not columns:
            return None
        if len(columns) == 1:
            return columns[0]
        participants = np.maximum.reduce([p for p, _ in columns])
        meetings = np.maximum.reduce([m for _, m in columns])
        return participants, meetings

    def _view(self, meeting: MeetingRequest) -> _View:
        peak = None if meeting.hours is None else self._peak(meeting.hours)
        if peak is None and meeting.live:
            return _View(self._used, self._free, self._share, self._full, self._meetings_after)
        reserved_p, reserved_m = peak if peak is not None else (0.0, 0.0)
        if meeting.live:
            used = self._used + reserved_p  # +inf (not open) stays +inf
            meetings = self._meetings + reserved_m
        else:
            used = np.where(self._open, reserved_p, math.inf)
            meetings = np.zeros(len(self._names)) + reserved_m
        full = meetings >= self._max_active
        with np.errstate(divide="ignore"):
            after = np.where(self._max_active > 0, (meetings + 1) / self._max_active, math.inf)
        share = meetings / np.maximum(1.0, self._max_active)
        return _View(used, np.where(full, math.inf, used), share, full, after)

    def rows_for(self, meeting: MeetingRequest) -> list[ServerLoad]:
        """The rows as `meeting` sees them: peak reservations over its span as pending load.

        `place` over these rows, without reservations, decides exactly as over this table.
        """
        peak = None if meeting.hours is None else self._peak(meeting.hours)
        if peak is None and meeting.live:
            return list(self)
        rows = []
        for i, row in enumerate(self):
            p = int(peak[0][i]) if peak is not None else 0
            m = int(peak[1][i]) if peak is not None else 0
            if meeting.live:
                rows.append(
                    dataclasses.replace(
                        row,
                        pending_participants=row.pending_participants + p,
                        pending_meetings=row.pending_meetings + m,
                    )
                )
            else:
                rows.append(
                    dataclasses.replace(
                        row,
                        active_meetings=0,
                        live_participants=0,
                        pending_participants=p,
                        pending_meetings=m,
                    )
                )
        return rows

    # -- deciding ----------------------------------------------------------

    def choose(self, meeting: MeetingRequest) -> tuple[str, bool, bool] | None:
        """`(name, has room, fits)` of the server `place` chooses; None if nobody may take it."""
        if not self._names:
            return None
        view = self._view(meeting)
        expected = meeting.expected_participants
        location = -1
        if meeting.location:
            location = self._location_codes.get(meeting.location, -1)
        # The usual case first: the lightest open server under its max active meetings
        # has room, fits, is where the meeting wants to be and may take it, with no tie.
        # Then it is the first of the best tier, so the answer, and 5 array operations.
        after = (view.free + expected) / self._capacity  # +inf where not open or full
        best = int(after.argmin())
        least = after[best]
        if (
            least <= 1.0
            and self._max_users[best] >= expected
            and (not meeting.location or self._location[best] == location)
            and not (meeting.instant and self._instant_full[best])
            and not (meeting.needs_media and (not self._media[best] or self._media_load.any()))
            and np.count_nonzero(after == least) == 1
        ):
            return self._names[best], True, True
        return self._choose_by_tier(meeting, location, view)

    def _choose_by_tier(
        self, meeting: MeetingRequest, location: int, view: _View
    ) -> tuple[str, bool, bool] | None:
        """`choose` the long way: every rule as a mask over the whole table."""
        expected = meeting.expected_participants
        after = (view.used + expected) / self._capacity  # +inf where not open
        candidate = after != math.inf
        if meeting.instant:
            candidate &= ~(view.full | self._instant_full)
        if meeting.location and meeting.location_required:
            candidate &= self._location == location
        # Rules 2 to 5 as bits, the most important first: the lowest tier wins.
        tiers = (view.full | (after > 1.0)) * 4 + (self._max_users < expected) * 2
        if meeting.location and not meeting.location_required:
            tiers += self._location != location
        if meeting.needs_media:
            tiers += ~self._media * 8
        tiers = np.where(candidate, tiers, 16)
        tier = int(tiers.min())
        if tier == 16:
            return None
        selected = tiers == tier
        room, fit = not tier & 4, not tier & 2
        # Rule 6, then 7: the lightest, or without room the least overloaded.
        load = np.maximum(after, self._media_load) if meeting.needs_media else after
        key = load if room else np.maximum(load, view.meetings_after)
        tied = np.flatnonzero(selected & (key == np.where(selected, key, math.inf).min()))
        if not room:
            tied = tied[load[tied] == load[tied].min()]
        best = int(tied[view.share[tied].argmin()])  # the first of the lowest share: by name
        return self._names[best], room, fit


def place(servers: LoadTable | Iterable[ServerLoad], meeting: MeetingRequest) -> Placement:
    """Choose the server for `meeting` by the rules in this module's docstring.

    `servers` is normally the registry's `LoadTable`; any other iterable of rows is put
    in a table first (rows are told apart by name: a later row with the same name
    replaces an earlier one). The same inputs always give the same answer.
    """
    table = servers if isinstance(servers, LoadTable) else LoadTable(servers)
    chosen = table.choose(meeting)
    if chosen is None:
        return Placement(None, refusal(table.rows_for(meeting), meeting))
    name, room, fit = chosen
    if room and fit:
        return Placement(name)
    row = next(r for r in table.rows_for(meeting) if r.name == name)
    kind, message = capacity_warning(row, meeting, room=room, fit=fit)
    return Placement(name, warning=message, warning_kind=kind)
