"""Queries on the meeting tools' journal rows (kind = the tool: `poll`, `moderation`, ...)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import JournalRow


async def events_of(session: AsyncSession, meeting_id: str, kind: str) -> list[JournalRow]:
    """One meeting's events of one tool, in the order they were stored
    (ix_journal_meeting_kind, migration 0017)."""
    stmt = (
        select(JournalRow)
        .where(JournalRow.meeting_id == meeting_id, JournalRow.kind == kind)
        .order_by(JournalRow.id)
    )
    return list((await session.scalars(stmt)).all())
