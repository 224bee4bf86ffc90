"""The meeting engine: the meetings this room server hosts, their rosters and chat.

Browser connections join and leave here; events for the EMS (who joined, who
left, which meeting ended) go into `outbox`, which the agent drains onto the
control channel and which survives a reconnect to the EMS.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from moot.cluster_config import ClusterConfig, for_room
from moot.protocol.client import (
    Ack,
    ChatLine,
    Ended,
    Error,
    Files,
    Moved,
    Notice,
    Pong,
    Roster,
    Welcome,
)
from moot.protocol.control import (
    MeetingEnded,
    MeetingFile,
    MeetingStatus,
    OpenMeeting,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
)
from moot.room.ratelimit import RateLimits
from moot.tokens import Role

log = logging.getLogger("moot.room.host")

OutboxItem = ParticipantJoined | ParticipantLeft | MeetingEnded
# How many client event ids a meeting remembers per sender to drop resends.
SEEN_IDS_PER_SENDER = 1000


class ClientChannel(Protocol):
    """What the engine needs of a browser connection."""

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass(eq=False)
class Connection:
    channel: ClientChannel
    user: str  # the name shown: one person's in a meeting (see HostedMeeting.holder_of)
    role: Role
    person: str = ""  # who it is (the join token's): one person's tabs share their name

    async def send(
        self,
        message: Welcome | Roster | ChatLine | Ack | Ended | Moved | Pong | Notice | Error | Files,
    ) -> None:
        try:
            await self.channel.send_text(message.model_dump_json())
        except Exception:  # a dead socket is cleaned up by its own reader
            log.debug("could not send to %s", self.user, exc_info=True)


@dataclass
class HostedMeeting:
    id: str
    name: str
    moderator: str
    epoch: int
    tools: list[str]
    recording: bool = False
    connections: list[Connection] = field(default_factory=list)
    history: list[ChatLine] = field(default_factory=list)
    seen: dict[str, list[str]] = field(default_factory=dict)
    # (sender, event id) of events waiting for the journal: never acknowledged twice.
    in_flight: set[tuple[str, str]] = field(default_factory=set)
    # Attached files, with their download links on the EMS (the EMS's word, kept as sent).
    files: list[MeetingFile] = field(default_factory=list)
    # How fast each person may chat (max_chat_lines_per_minute).
    rates: RateLimits = field(default_factory=RateLimits)

    def roster(self) -> list[Participant]:
        people: dict[str, Participant] = {}
        for conn in self.connections:
            people.setdefault(conn.user, Participant(user=conn.user, role=conn.role))
        return sorted(people.values(), key=lambda p: (p.role != "moderator", p.user.casefold()))

    def status(self) -> MeetingStatus:
        return MeetingStatus(
            meeting_id=self.id, epoch=self.epoch, participants=self.roster(), tools=self.tools
        )

    def holder_of(self, name: str) -> str | None:
        """The person who holds `name` in the meeting now (compared ignoring case), if any."""
        wanted = name.casefold()
        for conn in self.connections:
            if conn.user.casefold() == wanted:
                return conn.person or conn.user
        return None

    def name_taken(self, name: str, person: str) -> bool:
        """Whether someone else holds `name` here: two people never share one in a meeting."""
        holder = self.holder_of(name)
        return holder is not None and holder != (person or name)

    def forget_event(self, sender: str, event_id: str) -> None:
        seen = self.seen.get(sender, [])
        if event_id in seen:
            seen.remove(event_id)

    def is_duplicate(self, sender: str, event_id: str) -> bool:
        seen = self.seen.setdefault(sender, [])
        if event_id in seen:
            return True
        seen.append(event_id)
        del seen[:-SEEN_IDS_PER_SENDER]
        return False


class MeetingNotHere(Exception):
    pass


class NameTaken(Exception):
    """Someone else in the meeting holds this name; `str()` says what to do."""


Journal = Callable[[HostedMeeting, ChatLine], Awaitable[bool]]


async def _unjournaled(meeting: HostedMeeting, line: ChatLine) -> bool:
    """Without an EMS (unit tests): nothing to store, the event counts as kept."""
    return True


class MeetingHost:
    def __init__(self, journal: Journal | None = None) -> None:
        self.meetings: dict[str, HostedMeeting] = {}
        # Where events are made durable before they are acknowledged (the agent's).
        self.journal: Journal = journal or _unjournaled
        # Events for the EMS, kept until sent: they survive a lost control link.
        self.outbox: deque[OutboxItem] = deque()
        self.outbox_ready = asyncio.Event()
        # The cluster configuration the EMS sent (defaults until it has): read where used,
        # so a new one applies from the next line, page or meeting on, without a restart.
        self.config = ClusterConfig()
        self.config_version = 0
        # Messages to all users showing now, by id: a page that joins later gets them too.
        self.broadcasts: dict[int, Notice] = {}

    def apply_config(self, version: int, values: dict[str, object]) -> None:
        """Take a configuration from the EMS; ConfigError (nothing changes) if invalid."""
        # Whatever comes last wins: the EMS sends one server's configurations one at a time.
        self.config, self.config_version = for_room(values), version
        log.info("applied configuration version %d", version)

    def post(self, item: OutboxItem) -> None:
        self.outbox.append(item)
        self.outbox_ready.set()

    def logins(self) -> int:
        return sum(len(m.connections) for m in self.meetings.values())

    def statuses(self) -> list[MeetingStatus]:
        return [m.status() for m in self.meetings.values()]

    def open(self, command: OpenMeeting) -> None:
        existing = self.meetings.get(command.meeting_id)
        if existing is not None and existing.epoch >= command.epoch:
            return  # a resent command: opening is idempotent
        meeting = HostedMeeting(
            id=command.meeting_id,
            name=command.name,
            moderator=command.moderator,
            epoch=command.epoch,
            tools=list(command.tools) or list(self.config.default_tools),
            recording=command.record and self.config.recording_allowed,
            files=list(command.files),
        )
        for entry in command.history:  # rebuilt from its journal
            meeting.is_duplicate(entry.sender, entry.event_id)
            meeting.history.append(
                ChatLine(
                    id=entry.event_id, sender=entry.sender, text=entry.body["text"], at=entry.at
                )
            )
        self.meetings[command.meeting_id] = meeting
        log.info(
            "opened meeting %s (%s), epoch %d", command.meeting_id, command.name, command.epoch
        )

    async def close(
        self, meeting_id: str, reason: str, ended_by: str | None = None, *, moved: bool = False
    ) -> None:
        """Close a meeting: tell everyone, drop them, and tell the EMS if we ended it."""
        meeting = self.meetings.pop(meeting_id, None)
        if meeting is None:
            return
        for conn in list(meeting.connections):
            await conn.send(Moved() if moved else Ended(reason=reason))
            try:
                await conn.channel.close(code=1000, reason="meeting ended")
            except Exception:
                log.debug("closing a client of %s failed", meeting_id, exc_info=True)
        meeting.connections.clear()
        if ended_by is not None:
            self.post(
                MeetingEnded(
                    meeting_id=meeting.id, epoch=meeting.epoch, ended_by=ended_by, at=_now()
                )
            )
        log.info("closed meeting %s: %s", meeting_id, reason)

    async def notify(
        self,
        meeting_id: str | None,
        text: str,
        *,
        to: str = "everyone",
        broadcast_id: int | None = None,
        expires_at: datetime | None = None,
        withdrawn: bool = False,
    ) -> None:
        """Show `text` in the pages of one meeting (None: of every meeting here).

        A message to all users (`broadcast_id`) is also kept until `expires_at`, for the
        pages that join later; one that has expired already, or is `withdrawn`, is taken
        away."""
        meetings = (
            list(self.meetings.values())
            if meeting_id is None
            else [m for m in (self.meetings.get(meeting_id),) if m is not None]
        )
        notice = Notice(
            text=text, broadcast_id=broadcast_id, expires_at=expires_at, withdrawn=withdrawn
        )
        if broadcast_id is not None and withdrawn:
            self.broadcasts.pop(broadcast_id, None)
        elif broadcast_id is not None:
            self.broadcasts[broadcast_id] = notice
            self._drop_expired_broadcasts()
        for meeting in meetings:
            for conn in list(meeting.connections):
                if to == "everyone" or conn.role == "moderator":
                    await conn.send(notice)

    def current_broadcasts(self) -> list[Notice]:
        """The messages to all users showing now, oldest first."""
        self._drop_expired_broadcasts()
        return list(self.broadcasts.values())

    def _drop_expired_broadcasts(self) -> None:
        now = _now()
        for key, notice in list(self.broadcasts.items()):
            if notice.expires_at is not None and notice.expires_at <= now:
                del self.broadcasts[key]

    async def set_files(self, meeting_id: str, epoch: int, files: list[MeetingFile]) -> None:
        """The meeting's files changed at the EMS: every open page gets the new list."""
        meeting = self.meetings.get(meeting_id)
        if meeting is None or meeting.epoch != epoch:
            return  # not (or no longer) hosted here at that epoch: the list is not ours
        meeting.files = list(files)
        update = Files(files=meeting.files)
        for conn in list(meeting.connections):
            await conn.send(update)

    def get(self, meeting_id: str) -> HostedMeeting:
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            raise MeetingNotHere(meeting_id)
        return meeting

    async def join(self, meeting_id: str, conn: Connection) -> HostedMeeting:
        meeting = self.get(meeting_id)
        if meeting.name_taken(conn.user, conn.person):
            raise NameTaken(name_taken_text(conn.user))
        first_of_user = all(c.user != conn.user for c in meeting.connections)
        meeting.connections.append(conn)
        await conn.send(
            Welcome(
                meeting_id=meeting.id,
                meeting_name=meeting.name,
                you=Participant(user=conn.user, role=conn.role),
                roster=meeting.roster(),
                history=meeting.history,
                files=meeting.files,
            )
        )
        for notice in self.current_broadcasts():  # messages to all users sent before
            await conn.send(notice)
        if first_of_user:
            self.post(
                ParticipantJoined(
                    meeting_id=meeting.id,
                    epoch=meeting.epoch,
                    user=conn.user,
                    role=conn.role,
                    at=_now(),
                )
            )
            await self._broadcast(meeting, Roster(roster=meeting.roster()))
        return meeting

    async def leave(self, meeting_id: str, conn: Connection) -> None:
        meeting = self.meetings.get(meeting_id)
        if meeting is None or conn not in meeting.connections:
            return
        meeting.connections.remove(conn)
        if all(c.user != conn.user for c in meeting.connections):
            self.post(
                ParticipantLeft(
                    meeting_id=meeting.id, epoch=meeting.epoch, user=conn.user, at=_now()
                )
            )
            await self._broadcast(meeting, Roster(roster=meeting.roster()))

    async def chat(self, meeting_id: str, conn: Connection, event_id: str, text: str) -> None:
        """Store the line off this server, then show it to everyone, then acknowledge it."""
        meeting = self.get(meeting_id)
        key = (conn.user, event_id)
        if key in meeting.in_flight:
            return  # a resend while the first is being stored: that one will answer
        limit = self.config.max_chat_length
        if len(text) > limit:
            await conn.send(
                Error(message=f"a chat line is at most {limit} characters here", id=event_id)
            )
            return
        if event_id not in meeting.seen.get(conn.user, ()):  # a resend costs nothing
            per_minute = self.config.max_chat_lines_per_minute
            wait = meeting.rates.take(conn.person or conn.user, per_minute, time.monotonic())
            if wait:
                await conn.send(Error(message=too_fast_text(per_minute, wait), id=event_id))
                return
        if not meeting.is_duplicate(conn.user, event_id):
            line = ChatLine(id=event_id, sender=conn.user, text=text, at=_now())
            meeting.in_flight.add(key)
            try:
                stored = await self.journal(meeting, line)
            finally:
                meeting.in_flight.discard(key)
            if not stored:
                meeting.forget_event(conn.user, event_id)
                return  # no ack: the client sends it again
            meeting.history.append(line)
            await self._broadcast(meeting, line)
        await conn.send(Ack(id=event_id))

    @staticmethod
    async def _broadcast(meeting: HostedMeeting, message: Roster | ChatLine) -> None:
        for conn in list(meeting.connections):
            await conn.send(message)


def too_fast_text(per_minute: int, wait: float) -> str:
    return (
        f"you are sending chat lines too fast: at most {per_minute} a minute here;"
        f" wait {max(1, math.ceil(wait))} s"
    )


def name_taken_text(name: str) -> str:
    return (
        f"Someone else in this meeting is called {name}: "
        "open the meeting again and choose another name."
    )


def _now() -> datetime:
    return datetime.now(UTC)
