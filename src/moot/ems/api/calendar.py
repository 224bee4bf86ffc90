"""Occurrences, exceptions and the calendar: /api/v1/calendar, /api/v1/meetings/{id}/…"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from moot.core.permissions import Action
from moot.ems.api.meetings import meeting_out
from moot.ems.auth.identity import NotPermitted
from moot.ems.deps import AuthDep, FeedsDep, IdentityDep, MeetingsDep, ScheduleDep
from moot.ems.errors import InvalidQuery
from moot.ems.meetings import MeetingService
from moot.ems.model.meetings import ExceptionIn, ExceptionOut, MeetingOut, OccurrenceOut
from moot.ems.store.models import MeetingExceptionRow, MeetingRow, OccurrenceRow
from moot.ems.store.occurrences import CalendarEntry

router = APIRouter(prefix="/api/v1", tags=["calendar"])

CALENDAR_LIMIT = 2000  # occurrences a page of GET /api/v1/calendar, at most and by default


def occurrence_out(service: MeetingService, o: OccurrenceRow, m: MeetingRow) -> OccurrenceOut:
    return OccurrenceOut(
        meeting_id=m.id,
        name=m.name,
        moderator=m.moderator,
        status=m.status,
        start=o.start_at,
        end=o.end_at,
        original_start=o.original_start,
        moved=o.start_at != o.original_start,
        details_url=f"{service.public_url}/meetings/{m.id}",
    )


def entry_out(service: MeetingService, e: CalendarEntry) -> OccurrenceOut:
    return OccurrenceOut(
        meeting_id=e.meeting_id,
        name=e.name,
        moderator=e.moderator,
        status=e.status,
        start=e.start_at,
        end=e.end_at,
        original_start=e.original_start,
        moved=e.moved,
        details_url=f"{service.public_url}/meetings/{e.meeting_id}",
    )


def exception_out(row: MeetingExceptionRow) -> ExceptionOut:
    return ExceptionOut(
        original_start=row.original_start,
        skipped=row.skipped,
        start=row.new_start,
        duration_minutes=row.new_duration_minutes,
    )


def _aware(field: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidQuery(field, "needs a time zone offset, e.g. 2026-12-01T00:00:00Z")


class FeedOut(BaseModel):
    url: str = Field(
        description="The secret address of your calendar feed (shown once; subscribe to it"
        " with webcal:// in a calendar program). A new one ends the old."
    )


@router.post(
    "/calendar/feed",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedOut,
    responses={401: {}},
)
async def new_feed(identity: IdentityDep, feeds: FeedsDep) -> FeedOut:
    """A new secret address for your personal calendar feed (the meetings you moderate)."""
    if identity.claims is None or identity.claims.source == "cluster-secret":
        raise NotPermitted("sign in to have a calendar feed", signed_in=identity.claims is not None)
    return FeedOut(url=await feeds.new_address(identity))


@router.delete("/calendar/feed", status_code=status.HTTP_204_NO_CONTENT, responses={401: {}})
async def stop_feed(identity: IdentityDep, feeds: FeedsDep) -> Response:
    """Stop your calendar feed: its address opens nothing from now on."""
    if identity.claims is None or identity.claims.source == "cluster-secret":
        raise NotPermitted("sign in to have a calendar feed", signed_in=identity.claims is not None)
    await feeds.stop(identity)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/calendar", response_model=list[OccurrenceOut])
async def calendar(
    request: Request,
    response: Response,
    meetings: MeetingsDep,
    schedule: ScheduleDep,
    from_: Annotated[datetime, Query(alias="from")],
    to: Annotated[datetime, Query()],
    q: Annotated[str | None, Query(max_length=200, description="name or moderator")] = None,
    limit: Annotated[int, Query(ge=1, le=CALENDAR_LIMIT, description="per page")] = CALENDAR_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=200, description="from the Link header's rel=next")
    ] = None,
    *,
    identity: IdentityDep,
    auth: AuthDep,
) -> list[OccurrenceOut]:
    """Every occurrence of a listed meeting that overlaps [from, to), by start (up to 62 days).

    A meeting from 23:30 to 00:30 is in the ranges of both days; a repeating meeting appears
    once per occurrence, a moved occurrence at its new time. Up to `limit` a page; when
    there are more, the `Link` header names the next page (rel="next").
    """
    _aware("from", from_)
    _aware("to", to)
    auth.require(identity, Action.BROWSE)
    after = _decode_cursor(cursor) if cursor else None
    found = await schedule.calendar(
        from_, to, q or None, auth.reader_of(identity), limit=limit + 1, after=after
    )
    if len(found) > limit:
        found = found[:limit]
        last = found[-1]
        following = request.url.include_query_params(
            cursor=_encode_cursor(last.start_at, last.meeting_id)
        )
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return [entry_out(meetings, e) for e in found]


def _encode_cursor(start: datetime, meeting_id: str) -> str:
    payload = json.dumps([start.isoformat(), meeting_id]).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw, meeting_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        start = datetime.fromisoformat(raw)
        if not isinstance(meeting_id, str) or start.tzinfo is None:
            raise ValueError("cursor fields")
    except (ValueError, TypeError) as exc:
        raise InvalidQuery("cursor", "the cursor is not valid; start again without it") from exc
    return start, meeting_id


@router.get("/meetings/{meeting_id}/occurrences", response_model=list[OccurrenceOut])
async def meeting_occurrences(
    meeting_id: str,
    meetings: MeetingsDep,
    schedule: ScheduleDep,
    identity: IdentityDep,
    auth: AuthDep,
    after: Annotated[datetime | None, Query(description="only those ending after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[OccurrenceOut]:
    """When the meeting happens: its occurrences by start (one if it does not repeat)."""
    _aware("after", after)
    row, found = await schedule.occurrences_of(meeting_id, after, limit)
    auth.require_on(identity, Action.BROWSE, row)
    return [occurrence_out(meetings, o, row) for o in found]


@router.get("/meetings/{meeting_id}/exceptions", response_model=list[ExceptionOut])
async def list_exceptions(
    meeting_id: str,
    meetings: MeetingsDep,
    schedule: ScheduleDep,
    identity: IdentityDep,
    auth: AuthDep,
) -> list[ExceptionOut]:
    auth.require_on(identity, Action.BROWSE, await meetings.get(meeting_id))
    return [exception_out(r) for r in await schedule.exceptions(meeting_id)]


@router.post(
    "/meetings/{meeting_id}/exceptions",
    response_model=MeetingOut,
    status_code=status.HTTP_201_CREATED,
)
async def add_exception(
    meeting_id: str,
    body: ExceptionIn,
    meetings: MeetingsDep,
    schedule: ScheduleDep,
    identity: IdentityDep,
    auth: AuthDep,
) -> MeetingOut:
    """Skip one occurrence of a repeating meeting, or move it to another time."""
    auth.require_on(identity, Action.MODIFY, await meetings.get(meeting_id))
    row = await schedule.set_exception(
        meeting_id,
        body.original_start,
        new_start=body.start,
        duration_minutes=body.duration_minutes,
    )
    return meeting_out(meetings, row)


@router.delete("/meetings/{meeting_id}/exceptions", status_code=status.HTTP_204_NO_CONTENT)
async def remove_exception(
    meeting_id: str,
    meetings: MeetingsDep,
    schedule: ScheduleDep,
    original_start: Annotated[datetime, Query(description="the occurrence to restore")],
    identity: IdentityDep,
    auth: AuthDep,
) -> Response:
    """The occurrence happens as the repeat rule says again (who may change the meeting)."""
    _aware("original_start", original_start)
    auth.require_on(identity, Action.MODIFY, await meetings.get(meeting_id))
    await schedule.remove_exception(meeting_id, original_start)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
