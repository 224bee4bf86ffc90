"""Queries on the meeting tools' journal rows (kind = the tool: `poll`, `moderation`, ...)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import JournalRow
from moot.protocol.tools import NewOccurrence, ToolRecord


async def events_of(session: AsyncSession, meeting_id: str, kind: str) -> list[JournalRow]:
    """One meeting's events of one tool, in the order they were stored
    (ix_journal_meeting_kind, migration 0017)."""
    stmt = (
        select(JournalRow)
        .where(JournalRow.meeting_id == meeting_id, JournalRow.kind == kind)
        .order_by(JournalRow.id)
    )
    return list((await session.scalars(stmt)).all())


# The sender of the events the EMS journals itself (a new occurrence's fresh start).
MEETING_CENTER = "Meeting Center"


def new_occurrence(session: AsyncSession, meeting_id: str, epoch: int, at: datetime) -> None:
    """An occurrence of a repeating meeting is over: journal the moderator controls' fresh
    start (unlocked, nobody removed, muted or granted a role), read by the room server that
    opens the next occurrence and by the EMS's door alike. Its id names the epoch that
    ended: one each."""
    record = ToolRecord(event=NewOccurrence(), person="", role="moderator")
    session.add(
        JournalRow(
            meeting_id=meeting_id,
            epoch=epoch,
            event_id=f"occurrence-over-{epoch}",
            sender=MEETING_CENTER,
            kind="moderation",
            body=record.model_dump(mode="json"),
            at=at,
        )
    )
