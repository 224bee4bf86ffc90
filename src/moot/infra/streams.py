"""Server-sent-event streams: their encoding, and ending them when the process stops.

Two kinds of stream stay open as long as a page does: messages to all users
(moot.ems.broadcasts) and the monitor (moot.ems.web.admin_monitor). uvicorn, asked to stop
(SIGTERM, SIGINT), waits for every open answer to finish before it ends the app's lifespan,
so a stream that waited for the lifespan would hold the stop forever. `exit_signals` is the
one watcher of the process: each kind of stream registers a callback, called at the
signal, before uvicorn's own handler (chained, not replaced). It installs its handler at the
first registration and puts back what was there at the last one, once, whatever the order
the streams close in. Outside the main thread (tests' in-process clients) there are no
signals to watch: registering does nothing, and the lifespan's end stops the streams.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def event(name: str, data: Mapping[str, Any], event_id: int | None = None) -> str:
    """One server-sent event; JSON has no raw newline, so `data` is one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class ExitSignals:
    """Calls every registered callback, in its own event loop, at SIGTERM or SIGINT."""

    def __init__(self) -> None:
        self._callbacks: dict[int, tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = {}
        self._previous: dict[int, Any] = {}
        self._next = 0

    def register(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Watch for the signals on behalf of `callback`; returns what stops that (callable
        more than once). Call it from the running event loop."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        if not self._callbacks:
            for sig in SIGNALS:
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        self._next += 1
        key = self._next
        self._callbacks[key] = (loop, callback)

        def unregister() -> None:
            if self._callbacks.pop(key, None) is not None and not self._callbacks:
                self._restore()

        return unregister

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        for loop, callback in list(self._callbacks.values()):
            if not loop.is_closed():
                loop.call_soon_threadsafe(callback)
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # nobody else handles it: as if we were not here
            self._callbacks.clear()
            self._restore()
            signal.raise_signal(signum)

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            # Someone installed a handler after ours: theirs stays (it chains to ours).
            if signal.getsignal(sig) == self._handle and previous is not None:
                signal.signal(sig, previous)
        self._previous.clear()


# The process's one watcher: every kind of stream registers with it.
exit_signals = ExitSignals()
