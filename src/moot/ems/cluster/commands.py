"""Commands down the control channel and their round trips: each waits for its
command_result (or fails when the server goes away or does not answer in time)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import datetime
from typing import Any

from moot.bus import LinkClosed
from moot.core.meeting_status import MeetingStatus
from moot.ems.cluster.context import ClusterContext
from moot.ems.cluster.journal import entries_of
from moot.ems.cluster.registry import LiveServer
from moot.ems.store import journal as journal_store
from moot.ems.store import meetings as meeting_store
from moot.ems.store.models import MeetingRow
from moot.protocol.control import (
    ApplyConfig,
    CloseMeeting,
    CommandResult,
    JournalEntry,
    MeetingFiles,
    Notice,
    OpenMeeting,
)

log = logging.getLogger("moot.ems.cluster")

Command = OpenMeeting | CloseMeeting | Notice | ApplyConfig | MeetingFiles


class CommandFailed(Exception):
    """The room server refused a command (`refusal` says why) or did not answer in time."""

    def __init__(self, message: str, refusal: str | None = None) -> None:
        super().__init__(message)
        self.refusal = refusal


class Commands:
    def __init__(self, ctx: ClusterContext) -> None:
        self._ctx = ctx
        self._waiting: dict[str, tuple[str, asyncio.Future[CommandResult]]] = {}
        self._files_sends: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, sends waiting

    async def send(self, server: LiveServer, message: Command) -> None:
        """Send a command and wait for its result; CommandFailed if it did not succeed."""
        if server.link is None:
            raise CommandFailed(f"room server {server.name} is not connected")
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiting[message.request_id] = (server.name, future)
        try:
            await server.link.send(message)
            result = await asyncio.wait_for(future, self._ctx.command_timeout)
        except (LinkClosed, TimeoutError) as exc:
            raise CommandFailed(f"room server {server.name} did not answer {message.type}") from exc
        finally:
            self._waiting.pop(message.request_id, None)
        if not result.ok:
            refusal = result.error or "no reason given"
            raise CommandFailed(
                f"room server {server.name} refused {message.type}: {refusal}", refusal
            )

    def answered(self, result: CommandResult) -> None:
        """A command_result came up: the command waiting for it has its answer."""
        waiting = self._waiting.pop(result.request_id, None)
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(result)

    def fail_waiting(self, server_name: str) -> None:
        """The server went away: the commands waiting for it fail now."""
        for request_id, (name, future) in list(self._waiting.items()):
            if name == server_name and not future.done():
                future.set_exception(CommandFailed(f"room server {name} went offline"))
                self._waiting.pop(request_id, None)

    async def open_command(self, meeting: MeetingRow, epoch: int) -> OpenMeeting:
        """The command that opens (or rebuilds) a meeting: with its journal so far."""
        history: list[JournalEntry] = []
        if meeting.epoch > 0:  # opened before: it may have a journal to rebuild from
            async with self._ctx.sessions() as session:
                history = entries_of(await journal_store.history_of(session, meeting.id))
        return OpenMeeting(
            request_id=secrets.token_hex(8),
            meeting_id=meeting.id,
            epoch=epoch,
            name=meeting.name,
            moderator=meeting.moderator,
            tools=list(meeting.tools),
            meeting_type="broadcast" if meeting.type == "broadcast" else "collaboration",
            record=meeting.record,
            history=history,
            files=await self._ctx.files_of(meeting, epoch),
        )

    async def close_unanswered(self, server: LiveServer, meeting_id: str) -> None:
        """An open_meeting went unanswered: a slow server may still open the meeting, with
        nobody ever sent there. A close queued behind the open, on the same link, undoes it
        in order; its answer is not awaited (a hung server would not give one)."""
        link = server.link
        if link is None:
            return
        close = CloseMeeting(
            request_id=secrets.token_hex(8),
            meeting_id=meeting_id,
            reason="not opened: the Meeting Center stopped waiting for it",
        )
        with contextlib.suppress(LinkClosed):
            await link.send(close)

    async def close_meeting(self, meeting_id: str, server_name: str, reason: str) -> None:
        """Ask the hosting server to close a meeting; a no-op if it is not connected."""
        server = self._ctx.registry.get(server_name)
        if server is None or server.link is None:
            return
        await self.send_close(server, meeting_id, reason)

    async def send_close(
        self, server: LiveServer, meeting_id: str, reason: str, *, moved: bool = False
    ) -> None:
        try:
            await self.send(
                server,
                CloseMeeting(
                    request_id=secrets.token_hex(8),
                    meeting_id=meeting_id,
                    reason=reason,
                    moved=moved,
                ),
            )
        except CommandFailed as exc:
            log.warning("could not close meeting %s on %s: %s", meeting_id, server.name, exc)
        server.meetings.pop(meeting_id, None)
        self._ctx.registry.unhost(server, meeting_id)

    def files_changed(self, meeting_id: str) -> None:
        """A meeting's files changed: if it runs, its room server gets the new list.

        In the background, one meeting at a time, each send reading the list afresh: the
        last list a room server gets is the one stored, however quickly files change.
        """
        self._ctx.in_background(self._send_files(meeting_id))

    async def _send_files(self, meeting_id: str) -> None:
        lock, waiting = self._files_sends.get(meeting_id, (asyncio.Lock(), 0))
        self._files_sends[meeting_id] = (lock, waiting + 1)
        try:
            async with lock:
                async with self._ctx.sessions() as session:
                    meeting = await meeting_store.get_meeting(session, meeting_id)
                if (
                    meeting is None
                    or meeting.status != MeetingStatus.IN_PROGRESS
                    or not meeting.server_name
                ):
                    return  # not running: the list goes with open_meeting when it starts
                server = self._ctx.registry.get(meeting.server_name)
                if server is None or server.link is None:
                    return
                command = MeetingFiles(
                    request_id=secrets.token_hex(8),
                    meeting_id=meeting_id,
                    epoch=meeting.epoch,
                    files=await self._ctx.files_of(meeting, meeting.epoch),
                )
                try:
                    await self.send(server, command)
                except CommandFailed as exc:
                    log.warning("could not send the files of meeting %s: %s", meeting_id, exc)
        finally:
            lock, waiting = self._files_sends[meeting_id]
            if waiting == 1:
                del self._files_sends[meeting_id]
            else:
                self._files_sends[meeting_id] = (lock, waiting - 1)

    async def notify(
        self,
        server_name: str,
        meeting_id: str | None,
        text: str,
        *,
        to: str = "moderators",
        broadcast_id: int | None = None,
        expires_at: datetime | None = None,
        withdrawn: bool = False,
    ) -> None:
        """Show a notice in a meeting's pages (None: in every meeting on that server).

        With `broadcast_id`, a message to all users (moot.ems.broadcasts): the room server
        keeps it for pages opened later, until `expires_at`, or takes it away (`withdrawn`)."""
        server = self._ctx.registry.get(server_name)
        if server is None or server.link is None:
            return
        try:
            await self.send(
                server,
                Notice(
                    request_id=secrets.token_hex(8),
                    meeting_id=meeting_id,
                    text=text,
                    to="moderators" if to == "moderators" else "everyone",
                    broadcast_id=broadcast_id,
                    expires_at=expires_at,
                    withdrawn=withdrawn,
                ),
            )
        except CommandFailed as exc:
            log.warning("could not notify meeting %s on %s: %s", meeting_id, server_name, exc)

    async def apply_config(self, server: LiveServer, version: int, values: dict[str, Any]) -> None:
        """Send a room server its configuration; CommandFailed if it did not apply it."""
        await self.send(
            server, ApplyConfig(request_id=secrets.token_hex(8), version=version, values=values)
        )
