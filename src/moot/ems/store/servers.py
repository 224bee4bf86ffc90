"""Queries on room servers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from moot.core.meeting_status import MeetingStatus
from moot.ems.store.models import MeetingRow, RoomServerRow, ServerEventRow


async def list_servers(session: AsyncSession) -> list[RoomServerRow]:
    return list((await session.scalars(select(RoomServerRow).order_by(RoomServerRow.name))).all())


async def get_server(session: AsyncSession, name: str) -> RoomServerRow | None:
    stmt = select(RoomServerRow).where(RoomServerRow.name == name)
    return (await session.scalars(stmt)).first()


async def count_active_meetings(session: AsyncSession, name: str) -> int:
    stmt = select(func.count()).where(
        MeetingRow.server_name == name, MeetingRow.status == MeetingStatus.IN_PROGRESS
    )
    return int((await session.scalar(stmt)) or 0)


async def record_event(
    session: AsyncSession, *, server_name: str, at: datetime, state: str, reason: str
) -> None:
    session.add(ServerEventRow(server_name=server_name, at=at, state=state, reason=reason[:500]))


async def events_of(session: AsyncSession, name: str, limit: int = 100) -> list[ServerEventRow]:
    stmt = (
        select(ServerEventRow)
        .where(ServerEventRow.server_name == name)
        .order_by(ServerEventRow.at.desc(), ServerEventRow.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())
