"""Calls handed to another thread's event loop, which is woken once per burst.

`loop.call_soon_threadsafe` writes to the loop's wake-up pipe on every call: with the
agent on a loop of its own (agent.py), every chat line crossed twice (to the control
link, and its acknowledgement back), two system calls and two wake-ups a line. A mailbox
wakes its loop only when it was empty; the calls posted meanwhile run in the same turn.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any


class Mailbox:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._calls: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._woken = False

    def post(self, call: Callable[..., object], *args: Any) -> None:
        """Run call(*args) soon on the mailbox's loop; RuntimeError if that loop is closed."""
        self._calls.append((call, args))
        with self._lock:
            if self._woken:
                return  # the drain already scheduled will run this call too
            self._woken = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            with self._lock:
                self._woken = False
            raise

    def _drain(self) -> None:
        with self._lock:
            self._woken = False  # from here on, a new post wakes the loop again
        calls = self._calls
        while calls:
            call, args = calls.popleft()
            call(*args)
