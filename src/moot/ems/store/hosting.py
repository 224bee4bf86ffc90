"""A meeting's life on the room servers, written in one place.

A meeting is scheduled, then in progress on one server at one epoch (opened at its start,
moved by a failover or a drain, reopened where its server restarted: each time a new epoch
and, if it is recorded, a new recording segment), then waits for its next occurrence or
ends. The meetings service and the cluster's parts decide when; only these functions write
a meeting's status, host and epoch.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from moot.core.meeting_status import MeetingStatus
from moot.ems.store import occurrences
from moot.ems.store.db import utcnow
from moot.ems.store.meetings import close_attendance
from moot.ems.store.models import MeetingRow
from moot.ems.store.recordings import begin_segment, end_segments
from moot.ems.store.tool_events import new_occurrence


def mark_hosted(meeting: MeetingRow, server_name: str, epoch: int, at: datetime | None) -> None:
    """The row as it is once opened on `server_name` at `epoch` (`at`: its start, for a
    meeting that was not running). For a new row, before it is saved; for a stored one,
    `record_hosted` then writes it if nothing changed meanwhile."""
    meeting.status = MeetingStatus.IN_PROGRESS
    meeting.server_name = server_name
    meeting.epoch = epoch
    meeting.booked_server = None
    if at is not None:
        meeting.started_at = at


async def record_hosted(
    session: AsyncSession,
    meeting: MeetingRow,
    *,
    was: MeetingStatus,
    was_epoch: int,
    previous_ended: str,
    recording_allowed: bool,
) -> bool:
    """Store what `mark_hosted` set, if the stored meeting is still as the caller read it
    (`was`, `was_epoch`), and begin its new recording segment. False if it changed meanwhile
    (ended, deleted, moved): the caller undoes its opening."""
    values: dict[str, object] = {
        "server_name": meeting.server_name,
        "epoch": meeting.epoch,
        "status": MeetingStatus.IN_PROGRESS,
        "booked_server": None,
    }
    if was is not MeetingStatus.IN_PROGRESS:
        values["started_at"] = meeting.started_at
    result = await session.execute(
        update(MeetingRow)
        .where(MeetingRow.id == meeting.id, MeetingRow.status == was, MeetingRow.epoch == was_epoch)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await new_segment(session, meeting, previous_ended, allowed=recording_allowed)
    return True


async def new_segment(
    session: AsyncSession, meeting: MeetingRow, previous_ended: str, *, allowed: bool = True
) -> None:
    """A recorded meeting that opens (again) records its new epoch as a new segment.

    allowed: the cluster configuration lets its server record (recording_allowed). Where it
    does not, the room server records nothing and says so, so no segment begins there: a
    segment is the recording. The one before still ends.
    """
    if not meeting.record:
        return
    if not allowed:
        await end_segments(session, meeting.id, utcnow(), previous_ended or "recording not allowed")
        return
    await begin_segment(
        session,
        meeting_id=meeting.id,
        epoch=meeting.epoch,
        server_name=meeting.server_name or "",
        at=utcnow(),
        previous_ended=previous_ended,
    )


async def occurrence_over(
    session: AsyncSession, meeting: MeetingRow, at: datetime, why: str = "occurrence over"
) -> None:
    """One occurrence of a repeating meeting is over: it waits for the next, on no server;
    everyone still in it leaves, its recording segment ends (`why`), and the next starts with
    fresh moderator controls (tool_events.new_occurrence)."""
    new_occurrence(session, meeting.id, meeting.epoch, at)
    meeting.status = MeetingStatus.SCHEDULED
    meeting.server_name = None
    await close_attendance(session, meeting.id, at)
    await end_segments(session, meeting.id, at, why)


async def ended_inside(
    session: AsyncSession, meeting: MeetingRow, at: datetime, by: str, early: timedelta
) -> bool:
    """A moderator ended the meeting from inside it ("end for all"). A repeating meeting with
    an occurrence to come ends only this occurrence: the series goes on (the next occurrence
    opens on time), and this one is recorded as closed early (occurrences.close_early), so it
    is not opened again. Any other meeting ends. True if the series goes on.

    `early`: how long before its start a meeting may be opened (which occurrence it is in)."""
    held = await occurrences.current(session, meeting.id, at, early)
    upcoming = await occurrences.next_after(
        session, meeting.id, held.start_at if held is not None else at
    )
    if upcoming is None:
        await ended(session, meeting, at)
        return False
    if held is None:  # it ran past its end: its time was over anyway
        await occurrence_over(session, meeting, at)
        return True
    occurrences.close_early(session, meeting.id, held, at, by)
    await occurrence_over(session, meeting, at, f"occurrence closed early by {by}")
    return True


async def ended(session: AsyncSession, meeting: MeetingRow, at: datetime) -> None:
    """The meeting is over for good: everyone still in it leaves, its recording stops."""
    meeting.status = MeetingStatus.ENDED
    meeting.ended_at = at
    meeting.booked_server = None
    await close_attendance(session, meeting.id, at)
    await end_segments(session, meeting.id, at, "meeting ended")
