"""/api/v1/capacity"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from moot.core.placement import HOUR
from moot.ems.deps import EmsDep, require_admin
from moot.ems.errors import InvalidQuery
from moot.ems.model.capacity import (
    CapacityPlanOut,
    CapacityWarningOut,
    HourOut,
    PlanServerOut,
    PlanWarningOut,
    ServerHourOut,
)

router = APIRouter(
    dependencies=[Depends(require_admin)], prefix="/api/v1/capacity", tags=["capacity"]
)

MAX_PLAN_HOURS = 31 * 24


def _hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * HOUR, UTC)


@router.get("", response_model=CapacityPlanOut)
async def capacity_plan(
    ems: EmsDep,
    from_: Annotated[
        datetime | None,
        Query(alias="from", description="First hour (rounded down to the hour); default now"),
    ] = None,
    to: Annotated[
        datetime | None,
        Query(description="End (exclusive, rounded up to the hour); default 24 h after from"),
    ] = None,
) -> CapacityPlanOut:
    """Booked against available capacity per server per hour, with a warning for every
    hour where the bookings of scheduled meetings exceed a server or the whole cluster."""
    for field, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise InvalidQuery(field, "needs a time zone offset, e.g. 2026-12-07T09:00:00Z")
    first = int((from_ or datetime.now(UTC)).timestamp()) // HOUR
    last = first + 24 if to is None else -(-int(to.timestamp()) // HOUR)
    if last <= first:
        raise InvalidQuery("to", "must lie after from")
    if last - first > MAX_PLAN_HOURS:
        raise InvalidQuery("to", f"at most {MAX_PLAN_HOURS // 24} days after from")
    servers, hours, warnings = ems.cluster.capacity_plan(range(first, last))
    live = {s.name: s.status_word for s in ems.cluster.registry.all()}
    return CapacityPlanOut(
        start=_hour_start(first),
        end=_hour_start(last),
        servers=[
            PlanServerOut(
                name=s.name,
                status=live.get(s.name, "offline"),
                participants=s.participants,
                meetings=s.meetings,
                takes_meetings=s.takes_meetings,
            )
            for s in servers
        ],
        hours=[
            HourOut(
                start=_hour_start(h.hour),
                booked_participants=h.booked_participants,
                booked_meetings=h.booked_meetings,
                available_participants=h.available_participants,
                available_meetings=h.available_meetings,
                over=h.over,
                servers=[
                    ServerHourOut(
                        name=r.name,
                        booked_participants=r.booked_participants,
                        booked_meetings=r.booked_meetings,
                        participants=r.participants,
                        meetings=r.meetings,
                        over=r.over,
                    )
                    for r in h.servers
                ],
            )
            for h in hours
        ],
        warnings=[
            PlanWarningOut(start=_hour_start(w.hour), server=w.server, message=w.message)
            for w in warnings
        ],
    )


@router.get("/warnings", response_model=list[CapacityWarningOut])
async def capacity_warnings(
    ems: EmsDep,
    from_: Annotated[datetime | None, Query(alias="from", description="at or after")] = None,
    to: Annotated[datetime | None, Query(description="before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CapacityWarningOut]:
    """Meetings placed over a server's limits (no server had room) or grown past them, newest
    first. Limits guide placement but never stop a meeting: these say where they were passed.
    """
    for field, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise InvalidQuery(field, "needs a time zone offset, e.g. 2026-12-01T00:00:00Z")
    rows = await ems.cluster.capacity.list(from_, to, limit)
    return [
        CapacityWarningOut(
            id=row.id,
            at=row.at,
            kind=row.kind,
            meeting_id=row.meeting_id,
            server=row.server_name,
            message=row.message,
        )
        for row in rows
    ]
