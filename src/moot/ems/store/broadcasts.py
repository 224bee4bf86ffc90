"""Queries on messages to all users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import BroadcastRow


async def add_broadcast(
    session: AsyncSession, *, text: str, sent_by: str, sent_at: datetime, expires_at: datetime
) -> BroadcastRow:
    row = BroadcastRow(text=text, sent_by=sent_by[:200], sent_at=sent_at, expires_at=expires_at)
    session.add(row)
    await session.flush()  # the id, for the pages that will dismiss it by id
    return row


async def current_broadcasts(session: AsyncSession, now: datetime) -> list[BroadcastRow]:
    """The messages still showing at `now`, oldest first (few: they expire)."""
    stmt = (
        select(BroadcastRow)
        .where(BroadcastRow.expires_at > now)
        .order_by(BroadcastRow.sent_at, BroadcastRow.id)
    )
    return list((await session.scalars(stmt)).all())


async def recent_broadcasts(session: AsyncSession, limit: int = 20) -> list[BroadcastRow]:
    """The latest messages, expired or not, newest first (the admin page's history)."""
    stmt = select(BroadcastRow).order_by(BroadcastRow.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def get_broadcast(session: AsyncSession, broadcast_id: int) -> BroadcastRow | None:
    return await session.get(BroadcastRow, broadcast_id)
