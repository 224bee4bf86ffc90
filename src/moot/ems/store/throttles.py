"""Attempts per key in a window, reserved atomically (sign-in, meeting passwords).

`reserve` is one UPDATE whose condition is the limit: the database applies it to the row
under its own lock (SQLite: the write lock; PostgreSQL: the row lock, and the condition is
checked again on the row as committed), so two reservations never both take the last slot.
A window starts with its first attempt and lasts `window`; one that has passed starts again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from moot.ems.store.models import ThrottleRow


async def reserve(
    session: AsyncSession, key: str, *, limit: int, window: timedelta, now: datetime
) -> tuple[bool, datetime]:
    """Take one attempt of `key`'s window: (whether taken, the window's start)."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    await session.execute(
        insert(ThrottleRow)
        .values(key=key, window_start=now, attempts=0)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    passed = ThrottleRow.window_start <= now - window
    result = await session.execute(
        update(ThrottleRow)
        .where(ThrottleRow.key == key, or_(passed, ThrottleRow.attempts < limit))
        .values(
            attempts=case((passed, 1), else_=ThrottleRow.attempts + 1),
            window_start=case((passed, now), else_=ThrottleRow.window_start),
        )
    )
    taken = result.rowcount == 1  # type: ignore[attr-defined]
    start = await session.scalar(select(ThrottleRow.window_start).where(ThrottleRow.key == key))
    return taken, start or now


async def give_back(session: AsyncSession, key: str, window_start: datetime) -> None:
    """Return an attempt that turned out not to count (it succeeded, or nobody was at fault),
    to the window it was taken from (not to a later one)."""
    await session.execute(
        update(ThrottleRow)
        .where(
            ThrottleRow.key == key,
            ThrottleRow.window_start == window_start,
            ThrottleRow.attempts > 0,
        )
        .values(attempts=ThrottleRow.attempts - 1)
    )


async def forget_passed(session: AsyncSession, *, window: timedelta, now: datetime) -> None:
    """Drop the rows of windows that have passed (they would start again anyway)."""
    await session.execute(delete(ThrottleRow).where(ThrottleRow.window_start <= now - window))
