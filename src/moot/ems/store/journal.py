"""Queries on the meeting journal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from moot.core.meeting_status import MeetingStatus
from moot.ems.store.models import JournalRow, MeetingRow

__all__ = ["JournalRow", "append", "history_of", "hosts_of"]


async def hosts_of(session: AsyncSession, meeting_ids: set[str]) -> dict[str, tuple[str, int]]:
    """meeting id -> (hosting server, epoch), for meetings in progress."""
    stmt = select(MeetingRow.id, MeetingRow.server_name, MeetingRow.epoch).where(
        MeetingRow.id.in_(meeting_ids), MeetingRow.status == MeetingStatus.IN_PROGRESS
    )
    return {row.id: (row.server_name or "", row.epoch) for row in await session.execute(stmt)}


async def append(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert events; one already stored (a resend) is kept as it was."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(JournalRow).values(list(rows))
    await session.execute(
        stmt.on_conflict_do_nothing(index_elements=["meeting_id", "sender", "event_id"])
    )


async def history_of(session: AsyncSession, meeting_id: str) -> list[JournalRow]:
    stmt = select(JournalRow).where(JournalRow.meeting_id == meeting_id).order_by(JournalRow.id)
    return list((await session.scalars(stmt)).all())
