"""Queries on the meeting journal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, select
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


# One statement per dialect, given the rows as executemany parameters: its compiled form is
# cached, where `.values(rows)` built and compiled a new multi-row INSERT for every batch (a
# third of the journal writer's CPU, bench/journal.py). On the table, not the ORM class: the
# ORM's bulk path would turn every row into mapped attributes first.
_JOURNAL = cast(Table, JournalRow.__table__)
_UNIQUE = ["meeting_id", "sender", "event_id"]
_APPEND = {
    "postgresql": postgresql.insert(_JOURNAL).on_conflict_do_nothing(index_elements=_UNIQUE),
    "sqlite": sqlite.insert(_JOURNAL).on_conflict_do_nothing(index_elements=_UNIQUE),
}


async def append(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert events; one already stored (a resend) is kept as it was."""
    if not rows:
        return
    await session.execute(_APPEND[session.get_bind().dialect.name], list(rows))


async def history_of(session: AsyncSession, meeting_id: str) -> list[JournalRow]:
    stmt = select(JournalRow).where(JournalRow.meeting_id == meeting_id).order_by(JournalRow.id)
    return list((await session.scalars(stmt)).all())
