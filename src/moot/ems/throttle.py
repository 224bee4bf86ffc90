"""Throttles: so many attempts per key in a window, then a pause until the window ends.

Used for sign-in (per user name and per address) and meeting passwords (per meeting and
address). An attempt is reserved in the store *before* it is checked (store.throttles), so
that parallel attempts cannot all pass a count read before any of them was written; one that
does not count (it succeeded; the directory was down) is given back. A refused attempt does
not count: retrying during the pause never makes it longer, so nobody is locked out for
longer than one window after their last counted failure's window began.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems.store import throttles as store
from moot.ems.store.db import utcnow


class TooMany(Exception):
    """Every attempt of a key's window is used; `wait` is how long until it ends."""

    def __init__(self, key: str, wait: timedelta) -> None:
        super().__init__(f"{key}: wait {wait}")
        self.key = key
        self.wait = wait

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.wait.total_seconds() / 60))


@dataclass(frozen=True, slots=True)
class Reservation:
    """Attempts taken, (key, window start) each: to give back if they do not count."""

    taken: tuple[tuple[str, datetime], ...]


class Throttle:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], window: timedelta) -> None:
        self._sessions = sessions
        self.window = window

    async def reserve(self, limits: list[tuple[str, int]]) -> Reservation:
        """One attempt of each (key, limit), all or none; TooMany names the first full key."""
        taken: list[tuple[str, datetime]] = []
        now = utcnow()
        async with self._sessions() as session:
            for key, limit in limits:
                ok, start = await store.reserve(
                    session, key, limit=limit, window=self.window, now=now
                )
                if not ok:
                    for held, held_start in taken:
                        await store.give_back(session, held, held_start)
                    await session.commit()
                    raise TooMany(key, start + self.window - now)
                taken.append((key, start))
                await session.commit()  # visible to every other attempt at once
        return Reservation(tuple(taken))

    async def give_back(self, reservation: Reservation) -> None:
        async with self._sessions() as session:
            for key, start in reservation.taken:
                await store.give_back(session, key, start)
            await session.commit()

    async def tidy(self) -> None:
        """Forget the windows that have passed."""
        async with self._sessions() as session:
            await store.forget_passed(session, window=self.window, now=utcnow())
            await session.commit()
