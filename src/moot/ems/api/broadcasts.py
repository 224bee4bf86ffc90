"""/api/v1/broadcasts (administrators) and /events/broadcasts (every page)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from moot.ems.broadcasts import MAX_SHOW, MAX_TEXT, Broadcast
from moot.ems.deps import AdminDep, AuthDep, BroadcastsDep, require_admin

router = APIRouter(prefix="/api/v1", tags=["broadcasts"], dependencies=[Depends(require_admin)])
# Public: every page of the Meeting Center listens, signed in or not. Not in the OpenAPI
# description: a stream never ends, which API clients (and fuzzers) would wait on.
events_router = APIRouter(include_in_schema=False)


class BroadcastCreate(BaseModel):
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        description="Shown as text on every open page; trimmed; 1 to 2,000 characters.",
    )
    expires_at: AwareDatetime | None = Field(
        None, description="When it stops showing (at most 7 days ahead). Absent: see show_minutes."
    )
    show_minutes: int | None = Field(
        None,
        ge=1,
        le=int(MAX_SHOW.total_seconds() // 60),
        description="How long it shows, from now; absent with expires_at absent: 60.",
    )


class BroadcastOut(BaseModel):
    id: int
    text: str
    sent_by: str
    sent_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, message: Broadcast) -> BroadcastOut:
        return cls(
            id=message.id,
            text=message.text,
            sent_by=message.sent_by,
            sent_at=message.sent_at,
            expires_at=message.expires_at,
        )


@router.post("/broadcasts", status_code=status.HTTP_201_CREATED, response_model=BroadcastOut)
async def send_broadcast(
    body: BroadcastCreate, broadcasts: BroadcastsDep, admin: AdminDep, auth: AuthDep
) -> BroadcastOut:
    """A message to every user with a page open: Meeting Center pages and meetings.

    It shows at once on every open page and on those opened before it expires.
    """
    show_for = timedelta(minutes=body.show_minutes) if body.show_minutes is not None else None
    sent = await broadcasts.send(body.text, by=admin, until=body.expires_at, show_for=show_for)
    return BroadcastOut.of(sent)


@router.get("/broadcasts", response_model=list[BroadcastOut])
async def list_broadcasts(broadcasts: BroadcastsDep) -> list[BroadcastOut]:
    """The messages showing now (not expired, not withdrawn), oldest first."""
    return [BroadcastOut.of(m) for m in await broadcasts.listed()]


@router.delete("/broadcasts/{broadcast_id}", status_code=status.HTTP_204_NO_CONTENT)
async def withdraw_broadcast(
    broadcast_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    broadcasts: BroadcastsDep,
    admin: AdminDep,
    auth: AuthDep,
) -> Response:
    """Stop showing a message now: pages take it away."""
    withdrawn = await broadcasts.withdraw(broadcast_id, by=admin)
    if withdrawn is None:
        raise HTTPException(404, f"message {broadcast_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@events_router.get("/events/broadcasts")
async def broadcast_events(broadcasts: BroadcastsDep) -> StreamingResponse:
    """Server-sent events: `broadcast` (id, text, sent_at, expires_at) for each message
    showing now and each new one, `ended` (id) when one is withdrawn or expires."""
    return StreamingResponse(
        broadcasts.stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
