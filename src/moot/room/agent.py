"""The room server's agent: registers with the EMS, reports, obeys commands.

It redials with backoff when the EMS goes away and registers again with the
meetings it still hosts, so an EMS restart ends no meeting. A refusal
(wrong secret, incompatible version, removed) is final: the process stops.
A TLS failure (an EMS certificate tls_ca does not verify, a client
certificate the EMS refuses) is logged as an error and retried.

`moot room` runs the agent on an event loop of its own, in a thread of its own
(`run_in_thread`), so that nothing the meetings do delays a report or a command:
a room server that fans a line out to thousands of pages, or takes a storm of
joins, is busy, not dead, and its heartbeat says so on time. The two loops meet
in few places: the host publishes what the reports say (`MeetingHost.published`),
commands run on the meetings' loop (`_on_meetings`), chat lines go to the journal
through the agent's loop (`journal`, in mailboxes: mailbox.py), and events for the EMS
through the host's outbox (a deque, safe across threads).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from moot.bus import Dialer, Link, LinkClosed
from moot.bus.base import TlsRefused
from moot.core.configuration import ConfigError
from moot.infra.tokens import load_public_key
from moot.protocol import PROTOCOL_VERSION
from moot.protocol.control import (
    ApplyConfig,
    CloseMeeting,
    CommandResult,
    JournalAck,
    JournalAppend,
    JournalEntry,
    MediaReport,
    MeetingFiles,
    Notice,
    OpenMeeting,
    RecordedMediaAck,
    Refused,
    Register,
    Registered,
    ServerLimits,
    ShuttingDown,
    Status,
    parse_down,
)
from moot.room import metrics
from moot.room.community.hub import CommunityHub
from moot.room.host import HostedMeeting, MeetingHost
from moot.room.mailbox import Mailbox
from moot.room.media.upload import MediaUploader

log = logging.getLogger("moot.room.agent")
T = TypeVar("T")

# How long a chat line may wait for the EMS's journal before the sender must resend it:
# long enough to ride out a restart of the EMS, during which lines wait, in order.
JOURNAL_TIMEOUT = 15.0


async def _cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class RegistrationRefused(Exception):
    """The EMS will not take this room server; the message says why."""


class Agent:
    def __init__(
        self,
        *,
        name: str,
        url: str,
        secret: str,
        limits: ServerLimits,
        host: MeetingHost,
        dial: Dialer,
    ) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self.limits = limits
        self.host = host
        self._dial = dial
        self.public_key: Ed25519PublicKey | None = None
        self.registered = asyncio.Event()
        # Set when the server stops: events still waiting for the journal give up at once
        # (not acknowledged: their pages send them again wherever the meeting runs next).
        self._stopping = asyncio.Event()
        self._link: Link | None = None
        # The control link's event loop and the meetings' (the same one unless the agent
        # runs in a thread of its own: run_in_thread).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._meetings_loop: asyncio.AbstractEventLoop | None = None
        # Chat lines to the control loop and their outcomes back, woken once per burst.
        self._to_control: Mailbox | None = None
        self._to_meetings: Mailbox | None = None
        self._journal_stored: set[asyncio.Future[bool]] = set()  # lines waiting, meetings' loop
        self._outbox_ready = asyncio.Event()
        self._seq = 0
        self._journal_waiting: dict[tuple[str, str, str], asyncio.Future[JournalAck]] = {}
        # Appends sent and not acknowledged yet, in the order sent: after a lost link they
        # are sent again, before any new one, so each person's lines stay in order.
        self._journal_unacked: dict[tuple[str, str, str], JournalAppend] = {}
        host.journal = self.journal
        host.on_post = self._outbox_posted
        # Community services, when this server has a bus for them (server.py sets it).
        self.community: CommunityHub | None = None
        # Recorded media for the EMS (room/media/upload.py), when this server records.
        self.uploader: MediaUploader | None = None
        self._community_reported = (0, 0)  # sign-ins and messages reported so far

    # -- its own thread --------------------------------------------------------

    async def run_in_thread(self) -> None:
        """run(), on an event loop of its own in a thread of its own, until cancelled."""
        meetings = self._meetings_loop = asyncio.get_running_loop()
        loop = self._loop = asyncio.new_event_loop()
        self._to_control, self._to_meetings = Mailbox(loop), Mailbox(meetings)
        control = loop.create_task(self.run())
        finished: asyncio.Future[None] = meetings.create_future()

        def settle(error: BaseException | None) -> None:
            # A line posted to the control loop as it closed was never started: not stored.
            for stored in self._journal_stored:
                if not stored.done():
                    stored.set_result(False)
            if finished.done():
                return
            if isinstance(error, asyncio.CancelledError):
                finished.cancel()
            elif error is not None:
                finished.set_exception(error)
            else:
                finished.set_result(None)

        def body() -> None:
            error: BaseException | None = None
            try:
                loop.run_until_complete(control)
            except BaseException as exc:  # handed to the meetings' loop, which decides
                error = exc
            finally:
                # What still runs here (an event on its way to the journal) ends now: a
                # coroutine left pending as the loop closes would hold its page's handler,
                # and the server's exit, for ever.
                loop.run_until_complete(_cancel_all(asyncio.all_tasks(loop)))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
            with contextlib.suppress(RuntimeError):  # the meetings' loop is closed
                meetings.call_soon_threadsafe(settle, error)

        thread = threading.Thread(target=body, name=f"moot-control-{self.name}", daemon=True)
        thread.start()
        try:
            await asyncio.shield(finished)
        except asyncio.CancelledError:
            with contextlib.suppress(RuntimeError):  # its loop has ended already
                loop.call_soon_threadsafe(control.cancel)
            await asyncio.to_thread(thread.join)
            raise

    def _outbox_posted(self) -> None:
        """The host posted an event for the EMS (on the meetings' loop): wake the sender."""
        loop = self._loop
        if loop is None:
            self._outbox_ready.set()
        else:
            with contextlib.suppress(RuntimeError):  # the control loop is closed: stopping
                loop.call_soon_threadsafe(self._outbox_ready.set)

    async def _on_meetings(self, action: Callable[[], T]) -> T:
        """Run a MeetingHost call on the meetings' loop, and wait for its outcome."""
        meetings = self._meetings_loop
        if meetings is None or meetings is asyncio.get_running_loop():
            return action()
        outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                outcome.set_result(action())
            except Exception as exc:
                outcome.set_exception(exc)

        meetings.call_soon_threadsafe(call)
        return await asyncio.wrap_future(outcome)

    async def run(self) -> None:
        """Stay connected until cancelled; RegistrationRefused ends it."""
        delay = 0.2
        while True:
            try:
                link = await self._dial()
            except TlsRefused as exc:
                # A CA or certificate setting, not an outage: an error, but still retried,
                # since the fix may be made on the EMS's side (a renewed certificate).
                log.error("cannot connect to the EMS: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except OSError as exc:
                log.info("EMS not reachable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                await self._session(link)
            except LinkClosed as exc:
                log.warning("control link to the EMS lost: %s", exc or "closed")
            finally:
                self.registered.clear()
                self._link = None
                # Lines waiting for their journal_ack keep waiting: they are sent again on
                # the next link (the EMS drops one it already stored, and acknowledges it).
                await link.close()
            delay = 0.2
            await asyncio.sleep(delay)

    async def _session(self, link: Link) -> None:
        statuses, _ = self.host.published
        await link.send(
            Register(
                name=self.name,
                url=self.url,
                protocol_version=PROTOCOL_VERSION,
                secret=self._secret,
                limits=self.limits,
                meetings=list(statuses),
            )
        )
        reply = parse_down(await link.receive_text())
        if isinstance(reply, Refused):
            raise RegistrationRefused(reply.reason)
        if not isinstance(reply, Registered):
            raise LinkClosed(f"expected registered, got {reply.type}")
        self.public_key = load_public_key(reply.join_token_public_key)
        self.limits = reply.limits
        self._link = link
        for append in list(self._journal_unacked.values()):  # before any new line
            await link.send(append)
        self.registered.set()
        log.info("registered with the EMS as %s", self.name)
        tasks = [
            asyncio.create_task(self._report(link, reply.heartbeat_interval)),
            asyncio.create_task(self._forward_outbox(link)),
        ]
        if self.uploader is not None:
            tasks.append(asyncio.create_task(self.uploader.run(link)))
        try:
            await self._obey(link)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, LinkClosed):
                    await task

    async def _report(self, link: Link, interval: float) -> None:
        psutil.cpu_percent(None)  # the first call primes the counter
        while True:
            self._seq += 1
            statuses, logins = self.host.published  # as the meetings' loop last published it
            media = self.host.media.load  # replaced whole by the meetings' loop, never changed
            hub = self.community
            totals = (hub.signins, hub.messages) if hub is not None else (0, 0)
            reported = self._community_reported
            await link.send(
                Status(
                    seq=self._seq,
                    meetings=list(statuses),
                    logins=logins,
                    cpu_percent=psutil.cpu_percent(None),
                    memory_percent=psutil.virtual_memory().percent,
                    media=MediaReport(
                        available=media.available,
                        reason=media.reason,
                        publishers=media.publishers,
                        subscribers=media.subscribers,
                        max_streams=media.max_streams,
                        bitrate_kbps=media.bitrate_kbps,
                        max_bitrate_kbps=media.max_bitrate_kbps,
                    )
                    if media.enabled
                    else None,  # turned off on purpose: nothing to watch
                    community_offered=hub is not None and hub.offered and hub.ready,
                    community_connections=hub.connections if hub is not None else 0,
                    community_signins=max(totals[0] - reported[0], 0),
                    community_messages=max(totals[1] - reported[1], 0),
                )
            )
            self._community_reported = totals
            await asyncio.sleep(interval)

    async def _forward_outbox(self, link: Link) -> None:
        outbox = self.host.outbox
        if outbox:  # left over from a lost link
            self._outbox_ready.set()
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while outbox:
                # Removed only once sent: a lost link leaves it for the next one.
                await link.send(outbox[0])
                outbox.popleft()

    async def _obey(self, link: Link) -> None:
        while True:
            text = await link.receive_text()
            try:
                command = parse_down(text)
            except ValidationError as exc:
                log.warning("ignored a malformed command from the EMS: %s", exc)
                continue
            host = self.host
            if isinstance(command, OpenMeeting):
                await self._on_meetings(partial(host.open, command))
                await link.send(CommandResult(request_id=command.request_id, ok=True))
            elif isinstance(command, CloseMeeting):
                await self._on_meetings(
                    partial(host.close, command.meeting_id, command.reason, moved=command.moved)
                )
                await link.send(CommandResult(request_id=command.request_id, ok=True))
            elif isinstance(command, Notice):
                await self._on_meetings(
                    partial(
                        host.notify,
                        command.meeting_id,
                        command.text,
                        to=command.to,
                        broadcast_id=command.broadcast_id,
                        expires_at=command.expires_at,
                        withdrawn=command.withdrawn,
                    )
                )
                await link.send(CommandResult(request_id=command.request_id, ok=True))
            elif isinstance(command, MeetingFiles):
                await self._on_meetings(
                    partial(host.set_files, command.meeting_id, command.epoch, command.files)
                )
                await link.send(CommandResult(request_id=command.request_id, ok=True))
            elif isinstance(command, ApplyConfig):
                try:
                    await self._on_meetings(
                        partial(host.apply_config, command.version, command.values)
                    )
                except ConfigError as exc:  # refused whole: the old one stays in force
                    log.warning("refused configuration version %d: %s", command.version, exc)
                    await link.send(
                        CommandResult(request_id=command.request_id, ok=False, error=str(exc))
                    )
                else:
                    await link.send(CommandResult(request_id=command.request_id, ok=True))
            elif isinstance(command, JournalAck):
                key = (command.meeting_id, command.sender, command.event_id)
                waiting = self._journal_waiting.pop(key, None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(command)
            elif isinstance(command, RecordedMediaAck):
                if self.uploader is not None:
                    self.uploader.acknowledged(command)
            elif isinstance(command, Refused):
                raise RegistrationRefused(command.reason)
            else:
                log.warning("ignored an unexpected %s from the EMS", command.type)

    @metrics.journalled
    async def journal(self, meeting: HostedMeeting, entry: JournalEntry) -> bool:
        """Make an event durable in the EMS's journal; False if it could not be now.

        Called on the meetings' loop; the round trip runs on the control link's."""
        to_control, to_meetings = self._to_control, self._to_meetings
        if (
            to_control is None
            or to_meetings is None
            or to_control.loop is asyncio.get_running_loop()
        ):
            return await self._journal(meeting.id, meeting.epoch, entry)
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def settle(task: asyncio.Task[bool]) -> None:  # on the meetings' loop
            if stored.done():
                return
            if task.cancelled():
                stored.set_result(False)
            elif (error := task.exception()) is not None:
                stored.set_exception(error)
            else:
                stored.set_result(task.result())

        def start() -> None:  # on the control loop
            task = asyncio.get_running_loop().create_task(
                self._journal(meeting.id, meeting.epoch, entry)
            )
            task.add_done_callback(back)

        def back(task: asyncio.Task[bool]) -> None:  # on the control loop
            with contextlib.suppress(RuntimeError):  # the meetings' loop is closed: stopping
                to_meetings.post(settle, task)

        if to_control.loop.is_closed():  # the server is stopping: nothing would start it
            return False
        try:
            to_control.post(start)
        except RuntimeError:  # the control loop closed meanwhile
            return False
        self._journal_stored.add(stored)
        try:
            return await stored
        finally:
            self._journal_stored.discard(stored)

    async def _journal(self, meeting_id: str, epoch: int, entry: JournalEntry) -> bool:
        if self._stopping.is_set():
            return False
        # No await when registered: lines go out in order.
        if not self.registered.is_set() and not await self._until_registered():
            return False
        link = self._link
        if link is None:
            return False
        key = (meeting_id, entry.sender, entry.event_id)
        future: asyncio.Future[JournalAck] = asyncio.get_running_loop().create_future()
        self._journal_waiting[key] = future
        append = JournalAppend(meeting_id=meeting_id, epoch=epoch, entry=entry)
        self._journal_unacked[key] = append
        try:
            with contextlib.suppress(LinkClosed):  # sent again when the link is back
                await link.send(append)
            ack = await asyncio.wait_for(future, JOURNAL_TIMEOUT)
        except TimeoutError:
            return False
        finally:
            self._journal_waiting.pop(key, None)
            self._journal_unacked.pop(key, None)
        if not ack.ok and not self._stopping.is_set():
            log.warning("the EMS refused event %s of %s: %s", entry.event_id, meeting_id, ack.error)
        return ack.ok

    async def announce_shutdown(self) -> None:
        loop = self._loop
        if loop is not None and loop is not asyncio.get_running_loop():
            try:
                sent = asyncio.run_coroutine_threadsafe(self._announce_shutdown(), loop)
            except RuntimeError:  # the control loop has ended: nobody to tell
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.wrap_future(sent), 5)
            return
        await self._announce_shutdown()

    async def _until_registered(self) -> bool:
        """Wait (up to JOURNAL_TIMEOUT) for the EMS to take this server again; False if it
        did not, or if the server stops meanwhile."""
        waits = [asyncio.ensure_future(e.wait()) for e in (self.registered, self._stopping)]
        try:
            await asyncio.wait(waits, timeout=JOURNAL_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return self.registered.is_set() and not self._stopping.is_set()

    def _give_up_journal(self) -> None:
        """The server stops: every event waiting for the journal is answered "not stored"
        now, so no page's handler (and no exit) waits JOURNAL_TIMEOUT. Nothing acknowledged
        is lost: an event is acknowledged only once stored; one stored whose answer had not
        come is sent again by its page and dropped as a duplicate where the meeting runs."""
        self._stopping.set()
        for (meeting_id, sender, event_id), waiting in list(self._journal_waiting.items()):
            if not waiting.done():
                waiting.set_result(
                    JournalAck(
                        meeting_id=meeting_id,
                        sender=sender,
                        event_id=event_id,
                        ok=False,
                        error="the room server is stopping",
                    )
                )

    async def _announce_shutdown(self) -> None:
        self._give_up_journal()
        if self._link is not None:
            with contextlib.suppress(LinkClosed):
                await self._link.send(ShuttingDown())
