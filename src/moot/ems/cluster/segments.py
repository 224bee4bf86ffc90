"""Recording segments: a recorded meeting that opens (again) on a server records its new
epoch as a new segment."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store import recordings as recording_store
from moot.ems.store.db import utcnow
from moot.ems.store.models import MeetingRow


async def record_segment(
    session: AsyncSession,
    meeting: MeetingRow,
    server_name: str,
    epoch: int,
    previous_ended: str,
    *,
    allowed: bool = True,
) -> None:
    """A recorded meeting that opens (again) records its new epoch as a new segment.

    allowed: the cluster configuration lets `server_name` record (recording_allowed). Where
    it does not, the room server records nothing and says so, so no segment begins there:
    a segment is the recording. The one before still ends.
    """
    if not meeting.record:
        return
    if not allowed:
        await recording_store.end_segments(
            session, meeting.id, utcnow(), previous_ended or "recording not allowed"
        )
        return
    await recording_store.begin_segment(
        session,
        meeting_id=meeting.id,
        epoch=epoch,
        server_name=server_name,
        at=utcnow(),
        previous_ended=previous_ended,
    )
