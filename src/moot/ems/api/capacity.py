"""/api/v1/capacity"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from moot.ems.api.schemas import CapacityWarningOut
from moot.ems.deps import EmsDep
from moot.ems.errors import InvalidQuery

router = APIRouter(prefix="/api/v1/capacity", tags=["capacity"])


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
