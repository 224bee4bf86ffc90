"""Reads kept for a while, and shared while under way: what attend, the hot path, reads of
the store (a meeting's moderation events, the local users' names).

At 9:00 tens of attends of one meeting are in flight when what they need gets old; each
reading it queued one store read behind the other. Here they all wait for one read. A
value is kept `keep_for` seconds from when its read began; `forget(key)` drops it, and a
read that a forget() overtook is used by those who waited for it but never kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KeptReads(Generic[K, V]):
    def __init__(
        self, read: Callable[[K], Awaitable[V]], *, keep_for: float, max_keys: int = 10_000
    ) -> None:
        self._read = read
        self._keep_for = keep_for
        self._max_keys = max_keys
        self._kept: dict[K, tuple[float, V]] = {}
        self._reading: dict[K, asyncio.Future[V]] = {}
        self._changes = 0  # counts forget()s

    def forget(self, key: K) -> None:
        """What is kept of `key` is stale: the next get() reads it again."""
        self._changes += 1
        self._kept.pop(key, None)
        self._reading.pop(key, None)  # a later get() reads what was just changed

    def forget_all(self) -> None:
        """Everything kept is stale."""
        self._changes += 1
        self._kept.clear()
        self._reading.clear()

    async def get(self, key: K) -> V:
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is not None and now - kept[0] < self._keep_for:
            return kept[1]
        reading = self._reading.get(key)
        if reading is None:
            # The forget()s counted now, not when the read starts to run: one that comes
            # in between must stop it from being kept.
            reading = asyncio.ensure_future(self._read_and_keep(key, now, self._changes))
            self._reading[key] = reading
        # Shielded: one waiter that is cancelled (its client went) does not cancel the read
        # the others wait for.
        return await asyncio.shield(reading)

    async def _read_and_keep(self, key: K, began: float, changes_before: int) -> V:
        try:
            value = await self._read(key)
        finally:
            if self._reading.get(key) is asyncio.current_task():
                del self._reading[key]
        if self._changes == changes_before:
            if len(self._kept) >= self._max_keys:
                self._kept.clear()  # read again as needed: a cache, not state
            self._kept[key] = (began, value)
        return value
