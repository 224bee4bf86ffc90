"""A meeting's recording as its readers see it: the segments in order, as one recording."""

from __future__ import annotations

from datetime import datetime

from moot.core.meeting_status import MeetingStatus
from moot.ems.meetings import MeetingService
from moot.ems.model.meetings import RecordedEvent, RecordingOut, RecordingSegment
from moot.ems.store.db import utcnow
from moot.ems.store.models import MeetingRow
from moot.ems.store.recordings import RecordedSegment


def recording_out(
    service: MeetingService, row: MeetingRow, segments: list[RecordedSegment]
) -> RecordingOut:
    """The segments in order, as one recording: offsets count from its first moment."""
    origin = segments[0].segment.started_at
    now = utcnow()

    def offset(at: datetime) -> float:
        return round(max(0.0, (at - origin).total_seconds()), 3)

    out = []
    for number, recorded in enumerate(segments, start=1):
        segment = recorded.segment
        events = [
            RecordedEvent(
                at=j.at,
                offset_seconds=offset(j.at),
                kind="chat",
                user=j.sender,
                text=str(j.body.get("text", "")),
            )
            for j in recorded.journal
            if j.kind == "chat"  # tool events (polls, hands) are not played back yet
        ] + [
            RecordedEvent(at=at, offset_seconds=offset(at), kind=change, user=user)
            for at, user, change in recorded.roster
        ]
        events.sort(key=lambda e: e.at)
        out.append(
            RecordingSegment(
                number=number,
                epoch=segment.epoch,
                server=segment.server_name,
                started_at=segment.started_at,
                ended_at=segment.ended_at,
                end_reason=segment.end_reason,
                offset_seconds=offset(segment.started_at),
                events=events,
            )
        )
    last = segments[-1].segment.ended_at or now
    return RecordingOut(
        meeting_id=row.id,
        name=row.name,
        complete=row.status == MeetingStatus.ENDED,
        duration_seconds=offset(last),
        segments=out,
        playback_url=f"{service.public_url}/recordings/{row.id}",
    )
