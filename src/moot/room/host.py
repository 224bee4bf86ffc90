"""The meeting engine: the meetings this room server hosts, their rosters and chat.

Browser connections join and leave here; events for the EMS (who joined, who
left, which meeting ended) go into `outbox`, which the agent drains onto the
control channel and which survives a reconnect to the EMS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from moot.core.configuration import ClusterConfig, for_room, ice_servers
from moot.protocol.client import (
    Ack,
    ChatLine,
    Ended,
    Error,
    Files,
    Joined,
    Left,
    Moved,
    Notice,
)
from moot.protocol.control import (
    JournalEntry,
    MeetingEnded,
    MeetingFile,
    MeetingStatus,
    OpenMeeting,
    ParticipantJoined,
    ParticipantLeft,
)
from moot.room.connection import Connection
from moot.room.hosted_meeting import (
    FULL_ROSTER_EVERY,
    HostedMeeting,
    Journal,
    MeetingNotHere,
    NameTaken,
    NotAdmitted,
    replay,
    utc_now,
)
from moot.room.media.hub import MediaHub
from moot.room.texts import name_taken_text, too_fast_text
from moot.room.tool_hosting import CLOSE_NOT_ADMITTED, MeetingTools

__all__ = [
    "CLOSE_NOT_ADMITTED",
    "HostedMeeting",
    "MeetingHost",
    "MeetingNotHere",
    "NameTaken",
    "NotAdmitted",
]

log = logging.getLogger("moot.room.host")

OutboxItem = ParticipantJoined | ParticipantLeft | MeetingEnded


async def _unjournaled(meeting: HostedMeeting, entry: JournalEntry) -> bool:
    """Without an EMS (unit tests): nothing to store, the event counts as kept."""
    return True


class MeetingHost:
    def __init__(self, journal: Journal | None = None) -> None:
        self.meetings: dict[str, HostedMeeting] = {}
        # Where events are made durable before they are acknowledged (the agent's).
        self.journal: Journal = journal or _unjournaled
        # Events for the EMS, kept until sent: they survive a lost control link. The agent
        # takes them from its own thread (a deque's append and popleft are thread-safe) when
        # `on_post` wakes it.
        self.outbox: deque[OutboxItem] = deque()
        self.on_post: Callable[[], None] = lambda: None
        # What the heartbeat reports, for the agent's thread to read: (every meeting's
        # status, connections). Replaced whole, never changed, after the meetings change.
        self.published: tuple[tuple[MeetingStatus, ...], int] = ((), 0)
        self._publish_due = False
        # The cluster configuration the EMS sent (defaults until it has): read where used,
        # so a new one applies from the next line, page or meeting on, without a restart.
        self.config = ClusterConfig()
        self.config_version = 0
        # Messages to all users showing now, by id: a page that joins later gets them too.
        self.broadcasts: dict[int, Notice] = {}
        # Audio, video and screen sharing through this server's Janus (room/media/).
        self.media = MediaHub(
            lambda: list(self.meetings.values()),
            lambda: ice_servers(self.config.model_dump(mode="json"), time.time()),
            lambda: self.config.max_video_kbps,
        )
        self._media_tasks: set[asyncio.Task[None]] = set()
        # Community services hear of a new configuration and of messages to all users.
        self.on_config: Callable[[], None] = lambda: None
        self.on_notice_all: Callable[[str], None] = lambda text: None
        # ... and show presence in the rosters: a page joined; a person's last page left.
        self.on_page_joined: Callable[[HostedMeeting, Connection], None] = lambda m, c: None
        self.on_person_left: Callable[[HostedMeeting, Connection], None] = lambda m, c: None
        # Whiteboard, polls, hands, moderation, ...: their events, through this host.
        self.tools = MeetingTools(self)

    def apply_config(self, version: int, values: dict[str, object]) -> None:
        """Take a configuration from the EMS; ConfigError (nothing changes) if invalid."""
        # Whatever comes last wins: the EMS sends one server's configurations one at a time.
        self.config, self.config_version = for_room(values), version
        log.info("applied configuration version %d", version)
        self.on_config()

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on the meetings' loop without waiting for it (none: a unit test)."""
        try:
            task = asyncio.get_running_loop().create_task(work)
        except RuntimeError:
            work.close()
            return
        self._media_tasks.add(task)
        task.add_done_callback(self._media_tasks.discard)

    def post(self, item: OutboxItem) -> None:
        self.outbox.append(item)
        self.on_post()

    def changed(self) -> None:
        """The meetings or their rosters changed: publish them for the heartbeat, once for
        all the changes of this turn of the event loop (a storm of joins sorts the roster
        once a turn, not once a join)."""
        if self._publish_due:
            return
        self._publish_due = True
        try:
            asyncio.get_running_loop().call_soon(self._publish)
        except RuntimeError:  # no loop (a unit test): at once
            self._publish()

    def _publish(self) -> None:
        self._publish_due = False
        self.published = (tuple(self.statuses()), self.logins())

    def logins(self) -> int:
        return sum(len(m.connections) for m in self.meetings.values())

    def statuses(self) -> list[MeetingStatus]:
        """What the heartbeat reports: built once per roster change, not once per report."""
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
            kind=command.meeting_type,
            recording=command.record and self.config.recording_allowed,
            files=list(command.files),
        )
        for entry in command.history:  # rebuilt from its journal
            meeting.is_duplicate(entry.sender, entry.event_id)
            if entry.kind == "chat":
                meeting.record(
                    ChatLine(
                        id=entry.event_id, sender=entry.sender, text=entry.body["text"], at=entry.at
                    )
                )
            else:
                replay(meeting, entry)
        self.meetings[command.meeting_id] = meeting
        self.changed()
        log.info(
            "opened meeting %s (%s), epoch %d", command.meeting_id, command.name, command.epoch
        )

    def close(
        self, meeting_id: str, reason: str, ended_by: str | None = None, *, moved: bool = False
    ) -> None:
        """Close a meeting: tell everyone, drop them, and tell the EMS if we ended it.

        Each page gets `ended` (or `moved`), then its socket closes, in its own time: a
        slow browser holds up neither the others nor the EMS waiting for the answer.
        """
        meeting = self.meetings.pop(meeting_id, None)
        if meeting is None:
            return
        if meeting.full_roster_due is not None:
            meeting.full_roster_due.cancel()
        text = (Moved() if moved else Ended(reason=reason)).model_dump_json()
        for conn in meeting.connections:
            conn.send_text(text)
            conn.close(1000, "meeting ended")
        meeting.connections.clear()
        self.changed()
        self.in_background(self.media.close(meeting_id))
        if ended_by is not None:
            self.post(
                MeetingEnded(
                    meeting_id=meeting.id, epoch=meeting.epoch, ended_by=ended_by, at=utc_now()
                )
            )
        log.info("closed meeting %s: %s", meeting_id, reason)

    def notify(
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
        if meeting_id is None and broadcast_id not in (None, *self.broadcasts) and not withdrawn:
            self.on_notice_all(text)  # once: a link that comes back brings it again
        if broadcast_id is not None and withdrawn:
            self.broadcasts.pop(broadcast_id, None)
        elif broadcast_id is not None:
            self.broadcasts[broadcast_id] = notice
            self._drop_expired_broadcasts()
        wire = notice.model_dump_json()
        for meeting in meetings:
            if to == "everyone":
                self.fan_out(meeting, wire)
            else:
                moderators = [c for c in meeting.connections if meeting.actor_of(c).moderates]
                self.fan_out(meeting, wire, moderators)

    def current_broadcasts(self) -> list[Notice]:
        """The messages to all users showing now, oldest first."""
        self._drop_expired_broadcasts()
        return list(self.broadcasts.values())

    def _drop_expired_broadcasts(self) -> None:
        now = utc_now()
        for key, notice in list(self.broadcasts.items()):
            if notice.expires_at is not None and notice.expires_at <= now:
                del self.broadcasts[key]

    def set_files(self, meeting_id: str, epoch: int, files: list[MeetingFile]) -> None:
        """The meeting's files changed at the EMS: every open page gets the new list."""
        meeting = self.meetings.get(meeting_id)
        if meeting is None or meeting.epoch != epoch:
            return  # not (or no longer) hosted here at that epoch: the list is not ours
        meeting.files = list(files)
        self.fan_out(meeting, Files(files=meeting.files).model_dump_json())

    def get(self, meeting_id: str) -> HostedMeeting:
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            raise MeetingNotHere(meeting_id)
        return meeting

    def join(self, meeting_id: str, conn: Connection) -> HostedMeeting:
        """A page joins: it gets `welcome`; the others, if it is a new person, `joined`."""
        meeting = self.get(meeting_id)
        if meeting.name_taken(conn.user, conn.person):
            raise NameTaken(name_taken_text(conn.user))
        refused = meeting.admits(conn.person or conn.user, conn.role)
        if refused:
            raise NotAdmitted(refused)
        first_of_user = meeting.add(conn)
        self.changed()
        you = meeting.people[conn.user]
        conn.send_text(meeting.welcome_json(you), bounded=False)
        self.tools.send_states(meeting, conn)
        self.media.welcome(meeting, conn)
        for notice in self.current_broadcasts():  # messages to all users sent before
            conn.send(notice)
        if first_of_user:
            self.post(
                ParticipantJoined(
                    meeting_id=meeting.id,
                    epoch=meeting.epoch,
                    user=conn.user,
                    role=conn.role,
                    at=utc_now(),
                )
            )
            joined = Joined(user=you.user, role=you.role).model_dump_json()
            self._roster_changed(meeting, joined, but=conn)
        self.on_page_joined(meeting, conn)
        return meeting

    def leave(self, meeting_id: str, conn: Connection) -> None:
        meeting = self.meetings.get(meeting_id)
        if meeting is not None:
            self.remove(meeting, conn)

    def remove(self, meeting: HostedMeeting, conn: Connection) -> None:
        if conn in meeting.connections:
            self.changed()  # one connection fewer, whoever it was
        if not meeting.remove(conn):
            return  # not in it, or the user still has another page open
        self.post(
            ParticipantLeft(
                meeting_id=meeting.id, epoch=meeting.epoch, user=conn.user, at=utc_now()
            )
        )
        self._roster_changed(meeting, Left(user=conn.user).model_dump_json())
        self.on_person_left(meeting, conn)

    async def chat(self, meeting_id: str, conn: Connection, event_id: str, text: str) -> None:
        """Store the line off this server, then show it to everyone, then acknowledge it."""
        meeting = self.get(meeting_id)
        key = (conn.user, event_id)
        if key in meeting.in_flight:
            return  # a resend while the first is being stored: that one will answer
        limit = self.config.max_chat_length
        if len(text) > limit:
            self.deliver(
                meeting,
                conn,
                Error(message=f"a chat line is at most {limit} characters here", id=event_id),
            )
            return
        if event_id not in meeting.seen.get(conn.user, ()):  # a resend costs nothing
            per_minute = self.config.max_chat_lines_per_minute
            wait = meeting.rates.take(conn.person or conn.user, per_minute, time.monotonic())
            if wait:
                self.deliver(
                    meeting, conn, Error(message=too_fast_text(per_minute, wait), id=event_id)
                )
                return
        if not meeting.is_duplicate(conn.user, event_id):
            line = ChatLine(id=event_id, sender=conn.user, text=text, at=utc_now())
            entry = JournalEntry(
                event_id=event_id, sender=conn.user, kind="chat", body={"text": text}, at=line.at
            )
            meeting.in_flight.add(key)
            try:
                stored = await self.journal(meeting, entry)
            finally:
                meeting.in_flight.discard(key)
            if not stored:
                meeting.forget_event(conn.user, event_id)
                return  # no ack: the client sends it again
            self.fan_out(meeting, meeting.record(line))
            if len(meeting.history) == 1:
                self.changed()  # chat in use now: the heartbeat says so
        self.deliver(meeting, conn, Ack(id=event_id))

    def deliver(self, meeting: HostedMeeting, conn: Connection, message: BaseModel) -> None:
        """Queue a message for one page (dropped, and off the roster, if too far behind)."""
        if not conn.send(message) and conn.behind:
            self.remove(meeting, conn)

    def fan_out(
        self, meeting: HostedMeeting, text: str, to: Iterable[Connection] | None = None
    ) -> None:
        """Queue one serialised message on many pages (default: all); waits on none.

        A page too far behind is dropped (its socket closed with CLOSE_TOO_SLOW) and leaves
        the roster at once: its page rejoins and gets the meeting afresh.
        """
        behind = [
            conn
            for conn in (list(meeting.connections) if to is None else to)
            if not conn.send_text(text) and conn.behind
        ]
        for conn in behind:
            self.remove(meeting, conn)

    def _roster_changed(
        self, meeting: HostedMeeting, change: str, but: Connection | None = None
    ) -> None:
        """Send a roster change (`joined`, `left`) to every page of the meeting but `but`.

        Pages that did not ask for changes get the deprecated whole `roster` instead, at
        most once a second per meeting, built and serialised once for all of them.
        """
        self.fan_out(
            meeting, change, [c for c in meeting.connections if c.roster_changes and c is not but]
        )
        if meeting.full_roster_pages == 0 or meeting.full_roster_due is not None:
            return
        loop = asyncio.get_running_loop()
        wait = max(0.0, meeting.full_roster_sent_at + FULL_ROSTER_EVERY - loop.time())
        meeting.full_roster_due = loop.call_later(wait, self._send_full_roster, meeting)

    def _send_full_roster(self, meeting: HostedMeeting) -> None:
        meeting.full_roster_due = None
        meeting.full_roster_sent_at = asyncio.get_running_loop().time()
        if self.meetings.get(meeting.id) is not meeting:
            return
        wire = f'{{"type":"roster","roster":{meeting.roster_json()}}}'
        self.fan_out(meeting, wire, [c for c in meeting.connections if not c.roster_changes])
