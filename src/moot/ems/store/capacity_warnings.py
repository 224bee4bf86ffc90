"""Queries on capacity warnings. Functions take a session; callers commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import CapacityWarningRow


def add_warning(
    session: AsyncSession,
    *,
    at: datetime,
    kind: str,
    message: str,
    meeting_id: str | None = None,
    server_name: str | None = None,
) -> CapacityWarningRow:
    row = CapacityWarningRow(
        at=at, kind=kind, message=message[:1000], meeting_id=meeting_id, server_name=server_name
    )
    session.add(row)
    return row


async def list_warnings(
    session: AsyncSession,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
) -> list[CapacityWarningRow]:
    """Warnings raised at `start` or later and before `end`, newest first."""
    stmt = select(CapacityWarningRow)
    if start is not None:
        stmt = stmt.where(CapacityWarningRow.at >= start)
    if end is not None:
        stmt = stmt.where(CapacityWarningRow.at < end)
    stmt = stmt.order_by(CapacityWarningRow.at.desc(), CapacityWarningRow.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())
