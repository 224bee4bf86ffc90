"""Queries on personal calendar feeds: one secret address per person, stored as its hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import CalendarFeedRow


def owner_key(username: str, partition: str | None) -> str:
    return f"{partition or ''}/{username.casefold()}"


async def replace_feed(
    session: AsyncSession,
    *,
    username: str,
    partition: str | None,
    token_hash: str,
    at: datetime,
) -> None:
    """The person's feed is at this (hashed) address from now on; any earlier one ends."""
    owner = owner_key(username, partition)
    await session.execute(delete(CalendarFeedRow).where(CalendarFeedRow.owner == owner))
    session.add(
        CalendarFeedRow(
            owner=owner,
            username=username,
            partition=partition,
            token_hash=token_hash,
            created_at=at,
        )
    )


async def remove_feed(session: AsyncSession, *, username: str, partition: str | None) -> bool:
    result = await session.execute(
        delete(CalendarFeedRow).where(CalendarFeedRow.owner == owner_key(username, partition))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def feed_of(session: AsyncSession, token_hash: str) -> CalendarFeedRow | None:
    rows = await session.scalars(
        select(CalendarFeedRow).where(CalendarFeedRow.token_hash == token_hash)
    )
    return rows.first()
