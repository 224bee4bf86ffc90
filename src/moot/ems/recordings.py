"""A meeting's recording as its readers see it: the segments in order, as one recording."""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any

from moot.core.meeting_status import MeetingStatus
from moot.ems.meetings import MeetingService
from moot.ems.model.meetings import (
    RecordedEvent,
    RecordedMediaOut,
    RecordingOut,
    RecordingSegment,
)
from moot.ems.recording_events import Anonymizer, played
from moot.ems.store.db import utcnow
from moot.ems.store.models import JournalRow, MeetingRow
from moot.ems.store.recordings import RecordedSegment


def _journal_event(row: JournalRow, anonymizer: Anonymizer) -> RecordedEvent:
    if row.kind == "chat":
        return RecordedEvent(
            at=row.at,
            offset_seconds=0.0,
            kind="chat",
            user=row.sender,
            text=str(row.body.get("text", "")),
        )
    play = played(row, anonymizer)
    return RecordedEvent(
        at=row.at,
        offset_seconds=0.0,
        kind=row.kind,
        user=play.user,
        text=play.line,
        event=play.event,
        actor=play.actor,
        role=play.role,
    )


def recording_out(
    service: MeetingService, row: MeetingRow, segments: list[RecordedSegment]
) -> RecordingOut:
    """The segments in order, as one recording: offsets count from its first moment."""
    origin = segments[0].segment.started_at
    now = utcnow()

    def offset(at: datetime) -> float:
        return round(max(0.0, (at - origin).total_seconds()), 3)

    out = []
    anonymizer = Anonymizer()
    latest = 0.0  # offsets never go back: the journal's order is the order of play

    def at_least(value: float) -> float:
        nonlocal latest
        latest = max(latest, value)
        return latest

    for number, recorded in enumerate(segments, start=1):
        segment = recorded.segment
        journal = [_journal_event(j, anonymizer) for j in recorded.journal]
        roster = [
            RecordedEvent(at=at, offset_seconds=0.0, kind=change, user=user)
            for at, user, change in recorded.roster
        ]
        # The journal in its own order (id: the order events were applied in, which a
        # replay must keep), the roster's changes slotted in by time.
        events = [
            e.model_copy(update={"offset_seconds": at_least(offset(e.at))})
            for e in heapq.merge(journal, roster, key=lambda e: e.at)
        ]
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
                media=[
                    RecordedMediaOut(
                        id=m.id,
                        user=m.user_name,
                        kind="screen" if m.kind == "screen" else "camera",
                        track="audio" if m.track == "audio" else "video",
                        content_type=m.content_type,
                        offset_seconds=offset(m.started_at),
                        size=m.size,
                        url=f"{service.public_url}/recordings/{row.id}/media/{m.id}",
                    )
                    for m in recorded.media
                ],
            )
        )
    last = segments[-1].segment.ended_at or now
    return RecordingOut(
        meeting_id=row.id,
        name=row.name,
        complete=row.status == MeetingStatus.ENDED,
        duration_seconds=max(offset(last), latest),
        segments=out,
        playback_url=f"{service.public_url}/recordings/{row.id}",
    )


# The tools the recording page rebuilds on its stage; other tools' events are transcript lines.
STAGED = ("board", "poll", "hand")


def replay_of(recording: RecordingOut) -> list[dict[str, Any]]:
    """The events the recording page replays on its stage, in order: offset, kind, who."""
    return [
        {"at": e.offset_seconds, "kind": e.kind, "actor": e.actor, "user": e.user, "event": e.event}
        for segment in recording.segments
        for e in segment.events
        if e.kind in STAGED and e.event is not None
    ]
