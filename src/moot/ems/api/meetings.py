"""/api/v1/meetings"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse

from moot.core.permissions import Action
from moot.ems import moderator_keys
from moot.ems.attending import CannotAttend, NotAllowed, Unavailable
from moot.ems.auth.identity import NotPermitted
from moot.ems.changes import changes_access
from moot.ems.deps import AdmissionDep, AuthDep, IdentityDep, MeetingsDep
from moot.ems.errors import InvalidQuery, MeetingNotFound
from moot.ems.meetings import MeetingService
from moot.ems.model.meetings import (
    Attendee,
    MeetingCreate,
    MeetingCreated,
    MeetingDetail,
    MeetingOut,
    MeetingPage,
    MeetingPatch,
    ModeratorKeyOut,
    RecordingOut,
    RejoinOut,
    RejoinRequest,
)
from moot.ems.recordings import recording_out
from moot.ems.store.meetings import MeetingQuery, SortKey, StatusFilter
from moot.ems.store.models import AttendanceRow, MeetingRow

router = APIRouter(prefix="/api/v1/meetings", tags=["meetings"])


def meeting_out(service: MeetingService, row: MeetingRow) -> MeetingOut:
    return MeetingOut(
        id=row.id,
        name=row.name,
        type=row.type,
        moderator=row.moderator,
        expected_participants=row.expected_participants,
        start=row.start_at,
        end=row.end_at,
        duration_minutes=row.duration_minutes,
        recurrence=row.recurrence,
        record=row.record,
        has_password=row.password_hash is not None,
        tools=list(row.tools),
        location=row.location,
        location_required=row.location_required,
        timezone=row.timezone,
        unlisted=row.unlisted,
        restricted_to=list(row.restricted_to),
        status=row.status,
        server=row.server_name,
        booked_server=row.booked_server,
        epoch=row.epoch,
        started_at=row.started_at,
        ended_at=row.ended_at,
        created_at=row.created_at,
        join_url=service.join_url(row.id),
    )


def attendee_out(row: AttendanceRow) -> Attendee:
    return Attendee(
        user=row.user_name,
        role=row.role,
        server=row.server_name,
        joined_at=row.joined_at,
        left_at=row.left_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MeetingCreated,
    responses={401: {}, 503: {"description": "No room server can host it now."}},
)
async def create_meeting(
    body: MeetingCreate, meetings: MeetingsDep, identity: IdentityDep, auth: AuthDep
) -> MeetingCreated:
    """Schedule a meeting, or start it now when `start` is absent.

    Signed in, you moderate it unless `moderator` names someone else, and it belongs to your
    partition. Not signed in (or as the cluster administrator), you get its moderator key,
    this once: presented later, it makes its holder the moderator.
    """
    auth.require(identity, Action.CREATE)
    if identity.claims is not None and "moderator" not in body.model_fields_set:
        body = body.model_copy(update={"moderator": identity.claims.username})
    partition = identity.claims.partition if identity.claims else None
    key = moderator_keys.new_key() if identity.needs_moderator_key() else None
    row = await meetings.create(
        body,
        partition=partition,
        moderator_key_hash=moderator_keys.key_hash(key) if key else None,
    )
    return MeetingCreated(
        **meeting_out(meetings, row).model_dump(),
        moderator_key=key,
        moderator_url=f"{meetings.join_url(row.id)}?key={key}" if key else None,
    )


@router.post(
    "/{meeting_id}/moderator-key",
    status_code=status.HTTP_201_CREATED,
    response_model=ModeratorKeyOut,
    responses={401: {}, 403: {}, 404: {}},
)
async def new_moderator_key(
    meeting_id: str, meetings: MeetingsDep, identity: IdentityDep, auth: AuthDep
) -> ModeratorKeyOut:
    """A new moderator key (the moderator or an administrator): the old one opens nothing
    from now on. Shown this once."""
    auth.require_on(identity, Action.CHANGE_ACCESS, await meetings.get(meeting_id))
    key = await meetings.new_moderator_key(meeting_id)
    return ModeratorKeyOut(
        moderator_key=key, moderator_url=f"{meetings.join_url(meeting_id)}?key={key}"
    )


@router.get("", response_model=MeetingPage)
async def list_meetings(
    meetings: MeetingsDep,
    q: Annotated[str | None, Query(max_length=200, description="name or moderator")] = None,
    status_: Annotated[StatusFilter | None, Query(alias="status")] = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    sort: SortKey = "start",
    order: Literal["asc", "desc"] = "asc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    *,
    identity: IdentityDep,
    auth: AuthDep,
) -> MeetingPage:
    """Find meetings: by name or moderator, status, the time range they overlap."""
    auth.require(identity, Action.BROWSE)
    for field, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise InvalidQuery(field, "needs a time zone offset, e.g. 2026-12-01T00:00:00Z")
    rows, next_cursor = await meetings.list(
        MeetingQuery(
            q=q or None,
            status=status_,
            start_from=from_,
            start_to=to,
            sort=sort,
            order=order,
            limit=limit,
            cursor=cursor,
            reader=auth.reader_of(identity),
        )
    )
    return MeetingPage(items=[meeting_out(meetings, r) for r in rows], next_cursor=next_cursor)


@router.get("/{meeting_id}", response_model=MeetingDetail)
async def get_meeting(
    meeting_id: str, meetings: MeetingsDep, identity: IdentityDep, auth: AuthDep
) -> MeetingDetail:
    row, attendance = await meetings.get_with_attendance(meeting_id)
    auth.require_on(identity, Action.BROWSE, row)
    return MeetingDetail(
        **meeting_out(meetings, row).model_dump(),
        attendance=[attendee_out(a) for a in attendance],
    )


@router.get("/{meeting_id}/recording", response_model=RecordingOut, responses={404: {}})
async def get_recording(
    meeting_id: str, meetings: MeetingsDep, identity: IdentityDep, auth: AuthDep
) -> RecordingOut:
    """A recorded meeting's segments, one per room server it ran on, in playback order."""
    auth.require_on(identity, Action.VIEW_RECORDING, await meetings.get(meeting_id))
    row, segments = await meetings.recording(meeting_id)
    return recording_out(meetings, row, segments)


@router.patch("/{meeting_id}", response_model=MeetingOut)
async def patch_meeting(
    meeting_id: str, body: MeetingPatch, meetings: MeetingsDep, identity: IdentityDep, auth: AuthDep
) -> MeetingOut:
    """Change a meeting. Its moderator, password and restriction only its moderator (or an
    administrator) may change."""
    row = await meetings.get(meeting_id)
    auth.require_on(identity, Action.MODIFY, row)
    if changes_access(row, body.model_dump(exclude_unset=True)):
        auth.require_on(identity, Action.CHANGE_ACCESS, row)
    return meeting_out(meetings, await meetings.update(meeting_id, body))


@router.delete("/{meeting_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_meeting(
    meeting_id: str, meetings: MeetingsDep, identity: IdentityDep, auth: AuthDep
) -> Response:
    auth.require_on(identity, Action.DELETE, await meetings.get(meeting_id))
    await meetings.delete(meeting_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Meeting pages live on the room servers' origins and call back for a rejoin. The join
# token in the body is the credential, never a cookie, so any origin may ask; this is
# the only cross-origin route of the EMS.
CROSS_ORIGIN = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "content-type",
    "Access-Control-Max-Age": "600",
}


@router.options("/{meeting_id}/rejoin", include_in_schema=False)
async def rejoin_preflight(meeting_id: str) -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=CROSS_ORIGIN)


@router.post(
    "/{meeting_id}/rejoin",
    response_model=RejoinOut,
    responses={403: {}, 404: {}, 409: {}, 503: {}},
)
async def rejoin_meeting(
    meeting_id: str, body: RejoinRequest, admission: AdmissionDep
) -> RejoinOut | JSONResponse:
    """For a meeting page whose room server went away: where to reconnect, with a new token.

    Called by the meeting page itself (from the room server's origin), so that a moved
    meeting carries on without a refresh. Whoever the old token was given to must still
    be allowed in: 403 with the reason if they were signed out or removed, if a password
    was set or a restriction added since; the role is theirs now (a moderator key given
    anew, a moderator changed: participant).
    """
    # Answered here, errors included: the page must read them across origins.
    try:
        target = await admission.readmit(meeting_id, body.token)
    except MeetingNotFound:
        return cross_origin(404, f"meeting {meeting_id} not found")
    except (NotAllowed, NotPermitted) as exc:
        return cross_origin(403, str(exc))
    except CannotAttend as exc:
        return cross_origin(409, str(exc))
    except Unavailable as exc:
        return cross_origin(503, str(exc))
    answer = RejoinOut(url=target.url, socket_url=target.socket_url, token=target.token)
    return JSONResponse(answer.model_dump(), headers=CROSS_ORIGIN)


def cross_origin(status_code: int, detail: str) -> JSONResponse:
    """An error a meeting page (the room server's origin) can read: rejoin, upload."""
    return JSONResponse({"detail": detail}, status_code=status_code, headers=CROSS_ORIGIN)


@router.post("/{meeting_id}/end", response_model=MeetingOut)
async def end_meeting(
    meeting_id: str, meetings: MeetingsDep, identity: IdentityDep, auth: AuthDep
) -> MeetingOut:
    """End a meeting now: everyone in it is told and it closes on its room server."""
    auth.require_on(identity, Action.END, await meetings.get(meeting_id))
    by = identity.claims.username if identity.claims else "the Meeting Center"
    return meeting_out(meetings, await meetings.end(meeting_id, by=by))
