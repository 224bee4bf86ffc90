"""One browser's connection to a meeting, and the queue of messages on their way to it.

The meeting engine never waits on a browser. A message for many is serialised once and
queued on each connection (`send_text` does not await); a writer task per connection,
alive only while its queue holds something, sends it when that socket can take it. So a
slow browser holds up nobody: not the others in its meeting, not the heartbeat to the
EMS, not the commands from it.

A browser that falls too far behind (more than MAX_BACKLOG messages, or MAX_BACKLOG_BYTES,
waiting for it) is dropped: its queue is thrown away and the socket closed with
CLOSE_TOO_SLOW. The meeting page then rejoins, as after any lost connection, and its
`welcome` gives it the meeting as it is now.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from moot.infra.tokens import Role

log = logging.getLogger("moot.room.connection")

# WebSocket close code: this browser fell too far behind the meeting (docs/protocol.md).
CLOSE_TOO_SLOW = 4408
TOO_SLOW_REASON = "too far behind: rejoin"
# How far a browser may fall behind before it is dropped. At 20 chat lines a second plus
# a join or leave each a second, 1,000 messages is most of a minute; a chat line is at
# most about 2 KB, so the bytes bound only bites on long lines.
MAX_BACKLOG = 1000
MAX_BACKLOG_BYTES = 1 << 20
# Messages a writer sends before it lets the other tasks run (a socket that takes all at
# once would otherwise keep the event loop for the whole queue).
WRITE_BATCH = 64


class ClientChannel(Protocol):
    """What the engine needs of a browser connection (a Starlette WebSocket has it)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


# Writers that are running: asyncio keeps only a weak reference to a task.
_writers: set[asyncio.Task[None]] = set()


@dataclass(eq=False)
class Connection:
    channel: ClientChannel
    user: str  # the name shown: one person's in a meeting (HostedMeeting.name_taken)
    role: Role
    person: str = ""  # who it is (the join token's): one person's tabs share their name
    # The page understands `joined` / `left`; otherwise (a client written before them) it
    # gets the whole roster in the deprecated `roster` message, at most once a second.
    roster_changes: bool = True
    # Dropped for falling behind (then `closing` too).
    behind: bool = False
    # Closed, or about to be: nothing more is queued.
    closing: bool = False
    _queue: deque[tuple[str | _Close, int]] = field(default_factory=deque)
    _backlog_bytes: int = 0
    _writer: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        """Messages queued and not yet handed to the socket."""
        return len(self._queue)

    def send(self, message: BaseModel) -> bool:
        """Serialise and queue one message for this browser alone (see send_text)."""
        return self.send_text(message.model_dump_json())

    def send_text(self, text: str, *, bounded: bool = True) -> bool:
        """Queue a serialised message; False if it will not go (closing, or just dropped).

        `bounded=False` is for `welcome`, which may be large (the meeting's whole history):
        it is sent whatever its size and does not count against the backlog.
        """
        if self.closing:
            return False
        size = len(text) if bounded else 0
        if bounded and (
            len(self._queue) >= MAX_BACKLOG or self._backlog_bytes + size > MAX_BACKLOG_BYTES
        ):
            self._fall_behind()
            return False
        self._queue.append((text, size))
        self._backlog_bytes += size
        self._wake()
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket once what is queued before has been sent."""
        if self.closing:
            return
        self.closing = True
        self._queue.append((_Close(code, reason), 0))
        self._wake()

    def _fall_behind(self) -> None:
        log.warning(
            "dropped %s: %d messages (%d bytes) waiting for a browser too far behind",
            self.user,
            len(self._queue),
            self._backlog_bytes,
        )
        self._queue.clear()
        self._backlog_bytes = 0
        self.behind = True
        self.close(CLOSE_TOO_SLOW, TOO_SLOW_REASON)

    def _wake(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())
            _writers.add(self._writer)
            self._writer.add_done_callback(_writers.discard)

    async def _write(self) -> None:
        """Send what is queued, in order; ends when the queue is empty."""
        sent = 0
        try:
            while self._queue:
                item, size = self._queue.popleft()
                self._backlog_bytes -= size
                if isinstance(item, _Close):
                    self._queue.clear()
                    await self.channel.close(code=item.code, reason=item.reason)
                    return
                await self.channel.send_text(item)
                sent += 1
                if sent % WRITE_BATCH == 0:
                    await asyncio.sleep(0)
        except Exception:  # the socket is gone: its reader sees that and cleans up
            log.debug("could not send to %s", self.user, exc_info=True)
            self.closing = True
            self._queue.clear()
            self._backlog_bytes = 0
        finally:
            self._writer = None

    async def drained(self) -> None:
        """Wait until everything queued so far is written (or the socket is gone)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)
