"""Capacity warnings and the capacity plan as the API gives them (REST API v1 bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CapacityWarningOut(BaseModel):
    id: int
    at: datetime
    kind: Literal["no_room", "meeting_too_large", "participants_over_limit"] = Field(
        description="no_room: placed over a server's limits, as no server had room; "
        "meeting_too_large: more expected participants than the server allows per meeting; "
        "participants_over_limit: a running meeting has more live participants than allowed."
    )
    meeting_id: str | None
    server: str | None
    message: str


class ServerHourOut(BaseModel):
    name: str
    booked_participants: int
    booked_meetings: int
    participants: int = Field(description="Its capacity; 0 while it takes no meetings.")
    meetings: int = Field(description="Its max active meetings; 0 while it takes no meetings.")
    over: bool = Field(description="Booked beyond its capacity in this hour.")


class HourOut(BaseModel):
    start: datetime
    booked_participants: int
    booked_meetings: int
    available_participants: int
    available_meetings: int
    over: bool = Field(description="Booked beyond what the whole cluster can carry.")
    servers: list[ServerHourOut] = Field(description="The servers with bookings this hour.")


class PlanServerOut(BaseModel):
    name: str
    status: str
    participants: int
    meetings: int
    takes_meetings: bool = Field(description="Online (or suspect) and not draining.")


class PlanWarningOut(BaseModel):
    start: datetime = Field(description="The hour the warning is about.")
    server: str | None = Field(description="None: the whole cluster.")
    message: str


class CapacityPlanOut(BaseModel):
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    servers: list[PlanServerOut]
    hours: list[HourOut]
    warnings: list[PlanWarningOut]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
