"""A meeting's polls and their results (moderators and administrators): JSON and CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from moot.core.permissions import Action
from moot.ems.deps import AuthDep, IdentityDep, MeetingsDep, PollsDep
from moot.ems.polls import PollResult, csv_text

router = APIRouter(prefix="/api/v1/meetings", tags=["meetings"])


class PollOut(BaseModel):
    id: str
    question: str
    options: list[str]
    multiple: bool
    anonymous: bool
    created_by: str
    status: Literal["open", "closed"]
    opened_at: datetime
    closed_at: datetime | None
    results: list[int] | None
    ballots: dict[str, list[int]] | None
    voters: int


def poll_out(poll: PollResult) -> PollOut:
    return PollOut(
        id=poll.id,
        question=poll.question,
        options=poll.options,
        multiple=poll.multiple,
        anonymous=poll.anonymous,
        created_by=poll.created_by,
        status="open" if poll.closed_at is None else "closed",
        opened_at=poll.opened_at,
        closed_at=poll.closed_at,
        results=poll.results,
        ballots=poll.ballots,
        voters=len(poll.voters),
    )


@router.get("/{meeting_id}/polls", response_model=list[PollOut])
async def meeting_polls(
    meeting_id: str, meetings: MeetingsDep, identity: IdentityDep, auth: AuthDep, polls: PollsDep
) -> list[PollOut]:
    """The meeting's polls, in the order opened, with their results (and, if named, who
    chose what): final for a closed poll; live for an open one (`status` open: each
    person's last vote so far, as the meeting's moderators see them)."""
    auth.require_on(identity, Action.MODERATE, await meetings.get(meeting_id))
    return [poll_out(p) for p in await polls.of_meeting(meeting_id)]


@router.get(
    "/{meeting_id}/polls.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def meeting_polls_csv(
    meeting_id: str, meetings: MeetingsDep, identity: IdentityDep, auth: AuthDep, polls: PollsDep
) -> Response:
    """The same as CSV: one row per option of each poll."""
    auth.require_on(identity, Action.MODERATE, await meetings.get(meeting_id))
    return Response(
        csv_text(await polls.of_meeting(meeting_id)).encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="polls-{meeting_id}.csv"'},
    )
