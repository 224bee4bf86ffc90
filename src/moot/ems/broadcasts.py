"""Messages to all users: an administrator's text on every open page until it expires.

Three ways out, one source: the `broadcasts` table.

- Meeting Center pages hold one server-sent-events stream each (`/events/broadcasts`,
  read by static/notices.js). The node keeps the current messages in memory and fans a
  new one out to every open stream through one in-process queue per stream: no page
  ever costs a query.
- Meeting pages get it from their room server: the EMS sends every connected room server
  a control `notice` without a meeting (every meeting there), with the message's id and
  expiry; a room server that registers later gets the current ones at once.
- Several EMS nodes share the store: one task per node reads the current messages every
  `poll_interval` (1 s) and passes on those another node stored, so a message reaches
  pages of every node within about a second. Reading "not yet expired" (a handful of
  rows, indexed) rather than "id above the last seen" also catches a row whose
  transaction committed after a later one.

The streams end when the client leaves (Starlette cancels the stream) and when the EMS
stops: uvicorn waits for open responses before it runs the app's shutdown, so a stream
that waited for that would hang the stop; `end_streams_on_exit_signals` ends them at the
signal instead (through moot.infra.streams, which the monitor's streams share).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from moot.ems.auth.identity import Audit, Identity, no_audit
from moot.ems.cluster.needs import Notifying
from moot.ems.cluster.registry import LiveServer
from moot.ems.configuration import control_character
from moot.ems.errors import InvalidChange
from moot.ems.store import broadcasts as store
from moot.ems.store.db import utcnow
from moot.ems.store.models import BroadcastRow
from moot.ems.store.outage import StoreOutage
from moot.infra.streams import event, exit_signals

log = logging.getLogger("moot.ems.broadcasts")

MAX_TEXT = 2000  # what a control `notice` carries
DEFAULT_SHOW = timedelta(hours=1)
MAX_SHOW = timedelta(days=7)
POLL_INTERVAL = 1.0
# A comment line this often: proxies keep the stream open, and a dead client is noticed.
KEEPALIVE = 15.0
# How long the browser waits before it reconnects a stream that ended (milliseconds).
RETRY_MS = 2000
# Chunks a stream may fall behind by; a client that slow is closed (it reconnects).
QUEUE_SIZE = 64


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    text: str
    sent_by: str
    sent_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, row: BroadcastRow) -> Broadcast:
        return cls(
            id=row.id,
            text=row.text,
            sent_by=row.sent_by,
            sent_at=row.sent_at,
            expires_at=row.expires_at,
        )

    def showing(self, now: datetime) -> bool:
        return self.expires_at > now

    def public(self) -> dict[str, Any]:
        """What pages get: not who sent it (it is from "the administrators")."""
        return {
            "id": self.id,
            "text": self.text,
            "sent_at": self.sent_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


# -- the pure parts ---------------------------------------------------------------


def checked_text(text: str) -> str:
    """The message as it will show: trimmed, 1 to 2,000 characters, lines of text."""
    text = text.strip()
    if not text:
        raise InvalidChange("text", "write the message to send")
    why = control_character(text, lines=True)
    if why is not None:
        raise InvalidChange("text", why)
    if len(text) > MAX_TEXT:
        raise InvalidChange(
            "text", f"a message has at most {MAX_TEXT:,} characters (this one has {len(text):,})"
        )
    return text


def expiry(
    now: datetime, *, until: datetime | None = None, show_for: timedelta | None = None
) -> datetime:
    """When the message stops showing: `until`, or `show_for` from now (default 1 h)."""
    if until is not None and show_for is not None:
        raise InvalidChange("expires_at", "give either an expiry time or a duration, not both")
    end = until if until is not None else now + (show_for or DEFAULT_SHOW)
    if end <= now:
        raise InvalidChange("expires_at", "the message would have expired already")
    if end - now > MAX_SHOW:
        raise InvalidChange("expires_at", "a message shows for at most 7 days")
    return end


def broadcast_chunk(message: Broadcast) -> str:
    return event("broadcast", message.public(), message.id)


def ended_chunk(broadcast_id: int) -> str:
    """The message was withdrawn (or expired): pages take it away."""
    return event("ended", {"id": broadcast_id})


# -- the service ------------------------------------------------------------------


class BroadcastService:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        cluster: Notifying,
        audit: Audit = no_audit,
        poll_interval: float = POLL_INTERVAL,
        keepalive: float = KEEPALIVE,
    ) -> None:
        self._sessions = sessions
        self._cluster = cluster
        self._audit = audit
        self._poll_interval = poll_interval
        self._keepalive = keepalive
        self._current: dict[int, Broadcast] = {}  # showing now, as this node knows
        self._streams: set[asyncio.Queue[str | None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._ended = False
        self._restore_signals: Callable[[], None] = lambda: None
        self._unsubscribe: Callable[[], None] = lambda: None

    # -- start and stop -----------------------------------------------------

    async def start(self) -> None:
        await self.refresh()
        self._unsubscribe = self._cluster.events.server_registered.subscribe(self._registered)
        self._poller = asyncio.create_task(self._poll())

    async def close(self) -> None:
        self.end_streams()
        self._restore_signals()
        self._unsubscribe()
        tasks = [t for t in (self._poller, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def end_streams(self) -> None:
        """End every open stream now, and any opened from here on (the EMS is stopping)."""
        self._ended = True
        for queue in list(self._streams):
            _close(queue)

    def end_streams_on_exit_signals(self) -> None:
        """End the streams at SIGTERM or SIGINT, before uvicorn waits for open responses
        (moot.infra.streams); `close` stops watching."""
        self._restore_signals()
        self._restore_signals = exit_signals.register(self.end_streams)

    # -- sending ------------------------------------------------------------

    async def send(
        self,
        text: str,
        *,
        by: Identity,
        until: datetime | None = None,
        show_for: timedelta | None = None,
    ) -> Broadcast:
        """Store the message, then show it: on this node's pages and room servers at once,
        on other nodes' at their next poll. InvalidChange (nothing stored) if it cannot."""
        text = checked_text(text)
        sent_by = by.name
        now = utcnow()
        expires_at = expiry(now, until=until, show_for=show_for)
        async with self._sessions() as session:
            row = await store.add_broadcast(
                session, text=text, sent_by=sent_by, sent_at=now, expires_at=expires_at
            )
            await session.commit()
            message = Broadcast.of(row)
        log.info("message to all users %d from %s, until %s", message.id, sent_by, expires_at)
        self._learn(message)
        await self._audit(
            by,
            "broadcast.send",
            str(message.id),
            {"text": message.text, "expires_at": message.expires_at.isoformat()},
        )
        return message

    async def withdraw(self, broadcast_id: int, *, by: Identity) -> Broadcast | None:
        """Stop showing a message now; None if there is no such message."""
        async with self._sessions() as session:
            row = await store.get_broadcast(session, broadcast_id)
            if row is None:
                return None
            now = utcnow()
            if row.expires_at > now:
                row.expires_at = now
                await session.commit()
            message = Broadcast.of(row)
        if self._current.pop(broadcast_id, None) is not None:
            self._forget(message)  # other nodes take it away at their next poll
        await self._audit(by, "broadcast.withdraw", str(broadcast_id))
        return message

    async def listed(self) -> list[Broadcast]:
        """The messages showing now, from the store (every node's)."""
        async with self._sessions() as session:
            rows = await store.current_broadcasts(session, utcnow())
            return [Broadcast.of(row) for row in rows]

    async def recent(self, limit: int = 20) -> list[Broadcast]:
        async with self._sessions() as session:
            return [Broadcast.of(row) for row in await store.recent_broadcasts(session, limit)]

    def current(self) -> list[Broadcast]:
        now = utcnow()
        return [m for m in self._current.values() if m.showing(now)]

    @property
    def listeners(self) -> int:
        """Open streams on this node: one per browser with Meeting Center pages open here
        (its tabs share one, static/notices.js)."""
        return len(self._streams)

    # -- the pages' streams -------------------------------------------------

    async def stream(self) -> AsyncIterator[str]:
        """One page's events: the current messages, then each new one as it is sent."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
        # Listening before the current ones are read: a message sent in between comes
        # twice at worst, and pages show a message once by its id.
        self._streams.add(queue)
        try:
            yield f"retry: {RETRY_MS}\n\n"
            for message in self.current():
                yield broadcast_chunk(message)
            while not self._ended:
                try:
                    chunk = await asyncio.wait_for(queue.get(), self._keepalive)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if chunk is None:
                    break
                yield chunk
        finally:
            self._streams.discard(queue)

    def _fan_out(self, chunk: str) -> None:
        for queue in list(self._streams):
            try:
                queue.put_nowait(chunk)
            except asyncio.QueueFull:
                log.info("a page fell %d messages behind: its stream is closed", QUEUE_SIZE)
                self._streams.discard(queue)
                _close(queue)

    # -- what this node knows ----------------------------------------------

    def _learn(self, message: Broadcast) -> None:
        if message.id in self._current:
            return
        self._current[message.id] = message
        self._fan_out(broadcast_chunk(message))
        self._in_background(self._to_room_servers(message, self._cluster.registry.all()))

    def _forget(self, message: Broadcast) -> None:
        self._fan_out(ended_chunk(message.id))
        servers = self._cluster.registry.all()
        self._in_background(self._to_room_servers(message, servers, withdrawn=True))

    async def refresh(self) -> None:
        """Read the current messages: pass on new ones, take away ended ones."""
        known = set(self._current)  # one learnt while the query runs is not "gone"
        now = utcnow()
        async with self._sessions() as session:
            rows = await store.current_broadcasts(session, now)
            stored = {row.id: Broadcast.of(row) for row in rows}
        for message in stored.values():
            self._learn(message)
        for key in known - stored.keys():
            gone = self._current.pop(key, None)
            if gone is not None:  # expired, or withdrawn on another node
                self._forget(replace(gone, expires_at=min(gone.expires_at, now)))

    async def _poll(self) -> None:
        outage = StoreOutage(log, "reading the messages to all users")
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.refresh()
                outage.worked()
            except Exception as exc:  # the store is out of reach for now: the next poll
                outage.failed(exc)

    # -- room servers -------------------------------------------------------

    def _registered(self, server: LiveServer) -> None:
        """A room server (re)connected: it gets the messages showing now."""
        showing = self.current()
        if showing:
            self._in_background(self._send_all(server, showing))

    async def _send_all(self, server: LiveServer, messages: list[Broadcast]) -> None:
        for message in messages:
            await self._notify(server.name, message)

    async def _to_room_servers(
        self, message: Broadcast, servers: list[LiveServer], *, withdrawn: bool = False
    ) -> None:
        names = [s.name for s in servers if s.link is not None]
        await asyncio.gather(*(self._notify(name, message, withdrawn) for name in names))

    async def _notify(self, server_name: str, message: Broadcast, withdrawn: bool = False) -> None:
        # Withdrawn (or expired) is said outright: pages must not judge it by their clock.
        await self._cluster.notify(
            server_name,
            None,
            message.text,
            to="everyone",
            broadcast_id=message.id,
            expires_at=message.expires_at,
            withdrawn=withdrawn,
        )

    def _in_background(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _close(queue: asyncio.Queue[str | None]) -> None:
    """Make the stream reading `queue` end, however full it is."""
    while True:
        try:
            queue.put_nowait(None)
            return
        except asyncio.QueueFull:
            queue.get_nowait()
