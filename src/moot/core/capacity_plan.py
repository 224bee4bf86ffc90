"""Capacity planning: booked against available capacity, per server and hour. Pure.

Scheduled meetings book their expected participants on a server for every hour they
touch (`moot.core.placement`, reservations). This module lays those bookings beside what
the servers can carry, hour by hour, and says where the bookings exceed it: on one
server (placement will spread the overflow, if others have room), or across the whole
cluster (the Monday 9:00 peak: nobody has room, so meetings will run over their
servers' limits). It plans from bookings only: instant meetings are not booked ahead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ServerCapacity:
    name: str
    participants: int  # what it is sized for: max active meetings x max users per meeting
    meetings: int  # max active meetings
    takes_meetings: bool  # online, or expected back; not draining


@dataclass(frozen=True, slots=True)
class ServerHour:
    name: str
    booked_participants: int
    booked_meetings: int
    participants: int  # its capacity, 0 if it takes no meetings
    meetings: int

    @property
    def over(self) -> bool:
        return self.booked_participants > self.participants or self.booked_meetings > self.meetings


@dataclass(frozen=True, slots=True)
class HourPlan:
    hour: int  # hours since the epoch, UTC
    booked_participants: int
    booked_meetings: int
    available_participants: int  # of the servers that take meetings
    available_meetings: int
    servers: list[ServerHour] = field(default_factory=list)  # those with bookings

    @property
    def over(self) -> bool:
        """The cluster as a whole cannot carry this hour's bookings."""
        return (
            self.booked_participants > self.available_participants
            or self.booked_meetings > self.available_meetings
        )


@dataclass(frozen=True, slots=True)
class PlanWarning:
    hour: int
    server: str | None  # None: the whole cluster
    message: str


def plan(
    servers: Iterable[ServerCapacity],
    reserved: Callable[[int], dict[str, tuple[int, int]]],
    hours: range,
) -> tuple[list[HourPlan], list[PlanWarning]]:
    """Each hour of `hours` with its bookings (`reserved(hour)`: name -> (participants,
    meetings)), and a warning for every hour where they exceed what can carry them."""
    known = {s.name: s for s in servers}
    available_p = sum(s.participants for s in known.values() if s.takes_meetings)
    available_m = sum(s.meetings for s in known.values() if s.takes_meetings)
    plans: list[HourPlan] = []
    warnings: list[PlanWarning] = []
    for hour in hours:
        rows = []
        for name, (participants, meetings) in sorted(reserved(hour).items()):
            server = known.get(name)
            takes = server is not None and server.takes_meetings
            rows.append(
                ServerHour(
                    name=name,
                    booked_participants=participants,
                    booked_meetings=meetings,
                    participants=server.participants if takes and server else 0,
                    meetings=server.meetings if takes and server else 0,
                )
            )
        hour_plan = HourPlan(
            hour=hour,
            booked_participants=sum(r.booked_participants for r in rows),
            booked_meetings=sum(r.booked_meetings for r in rows),
            available_participants=available_p,
            available_meetings=available_m,
            servers=rows,
        )
        plans.append(hour_plan)
        if hour_plan.over:
            warnings.append(
                PlanWarning(
                    hour,
                    None,
                    f"the cluster is booked beyond what it can carry: "
                    f"{hour_plan.booked_participants} of {available_p} participants, "
                    f"{hour_plan.booked_meetings} of {available_m} meetings; "
                    "add room servers or move meetings",
                )
            )
        for row in rows:
            if not row.over:
                continue
            if row.participants == 0 and row.meetings == 0:
                why = (
                    "it takes no meetings now (offline, failed or draining): "
                    "they will be placed elsewhere when they start"
                )
            else:
                why = (
                    f"{row.booked_participants} of {row.participants} participants, "
                    f"{row.booked_meetings} of {row.meetings} meetings"
                )
            warnings.append(PlanWarning(hour, row.name, f"{row.name} is booked over: {why}"))
    return plans, warnings
