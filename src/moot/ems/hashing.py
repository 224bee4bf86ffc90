"""Password hashing off the event loop, on a small pool of its own.

scrypt (meeting passwords) and argon2id (local users) take tens of milliseconds of CPU each
on purpose; on the event loop, 24 guesses a second held every other request back (/healthz
to a p99 of 300 ms). On this pool they never block the loop, and at most POOL_SIZE run at
once, so a flood of guesses queues here instead of taking every thread asyncio has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

POOL_SIZE = 2
_pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="moot-hashing")

T = TypeVar("T")


async def off_loop(work: Callable[..., T], *args: object) -> T:
    """`work(*args)` on the hashing pool; the caller's coroutine waits, the loop does not."""
    return await asyncio.get_running_loop().run_in_executor(_pool, work, *args)
