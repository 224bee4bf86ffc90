"""The meeting engine: the meetings this room server hosts, their rosters and chat.

Browser connections join and leave here; events for the EMS (who joined, who
left, which meeting ended) go into `outbox`, which the agent drains onto the
control channel and which survives a reconnect to the EMS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from moot.core.configuration import ClusterConfig, for_room
from moot.infra.tokens import Role
from moot.protocol.client import (
    Ack,
    ChatLine,
    Draw,
    Drawing,
    Ended,
    Error,
    Files,
    Joined,
    Left,
    Moved,
    Notice,
    Pointer,
    Reaction,
    ToolDelta,
    ToolState,
    Welcome,
)
from moot.protocol.control import (
    JournalEntry,
    MeetingEnded,
    MeetingFile,
    MeetingStatus,
    OpenMeeting,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
)
from moot.protocol.tools import Grant, Remove, TakeBack, ToolEvent, ToolRecord, record_of
from moot.room.connection import Connection
from moot.room.ratelimit import RateLimits
from moot.room.texts import name_taken_text, too_fast_text
from moot.room.tools import CHECKS, TOOLS, disabled_text, enabled
from moot.room.tools.base import Actor, Refused, Room, Tool
from moot.room.tools.moderation import state as moderation
from moot.room.tools.moderation.roles import actor_of
from moot.room.tools.whiteboard import state as whiteboard

log = logging.getLogger("moot.room.host")

OutboxItem = ParticipantJoined | ParticipantLeft | MeetingEnded
# How many client event ids a meeting remembers per sender to drop resends.
SEEN_IDS_PER_SENDER = 1000
# The deprecated whole-roster message goes to a client at most this often (seconds).
FULL_ROSTER_EVERY = 1.0
# Tool events and reactions one person may send a minute (a burst of a tenth of it at once).
TOOL_EVENTS_PER_MINUTE = 120
# Finished whiteboard elements (and erase, undo, ...) one person may send a minute.
BOARD_EVENTS_PER_MINUTE = 600
# Live whiteboard updates (strokes while drawn, the pointer) one person may send a minute:
# 30 a second; more are dropped without a word (the finished stroke is journaled anyway).
DRAW_UPDATES_PER_MINUTE = 1800
# WebSocket close code: a moderator removed this person, or the meeting is locked.
CLOSE_NOT_ADMITTED = 4403

_participants: TypeAdapter[list[Participant]] = TypeAdapter(list[Participant])


@dataclass
class HostedMeeting:
    id: str
    name: str
    moderator: str
    epoch: int
    tools: list[str]
    recording: bool = False
    # Insertion-ordered set: a connection leaves in O(1), even from a meeting of 500.
    connections: dict[Connection, None] = field(default_factory=dict)
    # Who is in it (a user with several pages counts once, with the role of the first).
    people: dict[str, Participant] = field(default_factory=dict)
    pages_of: Counter[str] = field(default_factory=Counter)
    history: list[ChatLine] = field(default_factory=list)
    # Each line of `history` as sent: a `welcome` splices them in, never serialises again.
    history_json: list[str] = field(default_factory=list)
    seen: dict[str, list[str]] = field(default_factory=dict)
    # (sender, event id) of events waiting for the journal: never acknowledged twice.
    in_flight: set[tuple[str, str]] = field(default_factory=set)
    # Attached files, with their download links on the EMS (the EMS's word, kept as sent).
    files: list[MeetingFile] = field(default_factory=list)
    # How fast each person may chat (max_chat_lines_per_minute).
    rates: RateLimits = field(default_factory=RateLimits)
    # Who holds each name now (the name case-folded: the person): one person a name.
    holders: dict[str, str] = field(default_factory=dict)
    # Connections that asked for no roster changes (the deprecated whole `roster`).
    full_roster_pages: int = 0
    full_roster_due: asyncio.TimerHandle | None = None
    full_roster_sent_at: float = -FULL_ROSTER_EVERY
    # Each tool's state (by tool name), rebuilt from the journal when the meeting opens.
    tool_states: dict[str, Any] = field(default_factory=dict)
    # Tool events run one at a time per meeting, journal round trip included: each is
    # checked against the state it is then applied to, in the journal's order.
    tool_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tool_rates: RateLimits = field(default_factory=RateLimits)
    draw_rates: RateLimits = field(default_factory=RateLimits)
    board_rates: RateLimits = field(default_factory=RateLimits)
    reactions: Counter[str] = field(default_factory=Counter)
    # The joining page's `tool_state` of each tool whose view is everyone's, with the state
    # it was built from (rebuilt when the state is another object: states are immutable).
    shared_views: dict[str, tuple[Any, str]] = field(default_factory=dict)
    # Built once per change of the roster, not once per join or per report.
    _roster: list[Participant] | None = None
    _roster_json: str | None = None
    _status: MeetingStatus | None = None

    def roster(self) -> list[Participant]:
        """Everyone in the meeting, moderators first, then by name."""
        if self._roster is None:
            self._roster = sorted(
                self.people.values(), key=lambda p: (p.role != "moderator", p.user.casefold())
            )
        return self._roster

    def roster_json(self) -> str:
        if self._roster_json is None:
            self._roster_json = _participants.dump_json(self.roster()).decode()
        return self._roster_json

    def status(self) -> MeetingStatus:
        if self._status is None:
            self._status = MeetingStatus(
                meeting_id=self.id,
                epoch=self.epoch,
                participants=self.roster(),
                tools=self.tools_used(),
            )
        return self._status

    def add(self, conn: Connection) -> bool:
        """Count a new connection in; True if it is its user's first (a roster change)."""
        self.connections[conn] = None
        if not conn.roster_changes:
            self.full_roster_pages += 1
        self.pages_of[conn.user] += 1
        if conn.user in self.people:
            return False
        self.people[conn.user] = Participant(user=conn.user, role=conn.role)
        self.holders[conn.user.casefold()] = conn.person or conn.user
        self._roster = self._roster_json = self._status = None
        return True

    def remove(self, conn: Connection) -> bool:
        """Count a connection out; True if it was its user's last (a roster change)."""
        if self.connections.pop(conn, False) is False:
            return False
        if not conn.roster_changes:
            self.full_roster_pages -= 1
        self.pages_of[conn.user] -= 1
        if self.pages_of[conn.user] > 0:
            return False
        del self.pages_of[conn.user]
        del self.people[conn.user]
        self.holders.pop(conn.user.casefold(), None)
        self._roster = self._roster_json = self._status = None
        return True

    def tools_used(self) -> list[str]:
        """The tools of the meeting's form that were used in it (what the monitor counts as
        "tools in use"): chat once a line is said, a tool once it took an event."""
        used = {"chat"} if self.history else set()
        used |= {
            t.enabled_by for t in TOOLS.values() if t.enabled_by and t.name in self.tool_states
        }
        return [t for t in self.tools if t in used] + sorted(used - set(self.tools))

    def set_tool_state(self, tool: Tool[Any], state: Any) -> bool:
        """Keep a tool's new state; True if the tool is used for the first time here."""
        first = tool.name not in self.tool_states
        self.tool_states[tool.name] = state
        if first:
            self._status = None
        return first

    def tool_state(self, tool: Tool[Any]) -> Any:
        state = self.tool_states.get(tool.name)
        return tool.initial() if state is None else state

    def admits(self, person: str, role: Role) -> str:
        """Why this person may not enter now ("" if they may): removed, or locked out."""
        return moderation.admits(self.tool_state(moderation.TOOL), person, role)

    def actor(self, user: str, person: str, token_role: Role) -> Actor:
        """Who this is here now: the token's role raised by a moderator's grant."""
        return actor_of(self.tool_state(moderation.TOOL), user, person, token_role)

    def actor_of(self, conn: Connection) -> Actor:
        return self.actor(conn.user, conn.person or conn.user, conn.role)

    def room(self) -> Room:
        """Who is here, for the tool events that name someone."""
        people = {}
        for p in self.people.values():
            name = p.user.casefold()
            people[name] = (self.holders.get(name, p.user), p.role, p.user)
        return Room(people, {f.id: (f.name, f.content_type) for f in self.files})

    def name_taken(self, name: str, person: str) -> bool:
        """Whether someone else holds `name` here: two people never share one in a meeting."""
        holder = self.holders.get(name.casefold())
        return holder is not None and holder != (person or name)

    def welcome_json(self, you: Participant) -> str:
        """The `welcome` for a new page, built from parts serialised once.

        The roster and the history can be large (500 people, thousands of lines) and the
        same for every page that joins, so they are spliced in as they were sent, not
        serialised again for each. The result is what `Welcome(...).model_dump_json()`
        gives (a unit test checks it). The splice is safe: inside a JSON string a quote is
        escaped, so `"roster":[],"history":[]` can only be the fields themselves.
        """
        empty = Welcome(
            meeting_id=self.id,
            meeting_name=self.name,
            you=you,
            roster=[],
            history=[],
            files=self.files,
        ).model_dump_json()
        parts = f'"roster":{self.roster_json()},"history":[{",".join(self.history_json)}]'
        return empty.replace('"roster":[],"history":[]', parts, 1)

    def record(self, line: ChatLine) -> str:
        """Add a line to the history; its JSON, as every page gets it."""
        text = line.model_dump_json()
        if not self.history:
            self._status = None  # chat is in use now
        self.history.append(line)
        self.history_json.append(text)
        return text

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


class NameTaken(Exception):
    """Someone else in the meeting holds this name; `str()` says what to do."""


class MeetingNotHere(Exception):
    pass


class NotAdmitted(Exception):
    """A moderator removed this person, or the meeting is locked; `str()` says which."""


Journal = Callable[[HostedMeeting, JournalEntry], Awaitable[bool]]


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

    def apply_config(self, version: int, values: dict[str, object]) -> None:
        """Take a configuration from the EMS; ConfigError (nothing changes) if invalid."""
        # Whatever comes last wins: the EMS sends one server's configurations one at a time.
        self.config, self.config_version = for_room(values), version
        log.info("applied configuration version %d", version)

    def post(self, item: OutboxItem) -> None:
        self.outbox.append(item)
        self.on_post()

    def _changed(self) -> None:
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
                _replay(meeting, entry)
        self.meetings[command.meeting_id] = meeting
        self._changed()
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
        self._changed()
        if ended_by is not None:
            self.post(
                MeetingEnded(
                    meeting_id=meeting.id, epoch=meeting.epoch, ended_by=ended_by, at=_now()
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
        if broadcast_id is not None and withdrawn:
            self.broadcasts.pop(broadcast_id, None)
        elif broadcast_id is not None:
            self.broadcasts[broadcast_id] = notice
            self._drop_expired_broadcasts()
        wire = notice.model_dump_json()
        for meeting in meetings:
            if to == "everyone":
                self._fan_out(meeting, wire)
            else:
                moderators = [c for c in meeting.connections if meeting.actor_of(c).moderates]
                self._fan_out(meeting, wire, moderators)

    def current_broadcasts(self) -> list[Notice]:
        """The messages to all users showing now, oldest first."""
        self._drop_expired_broadcasts()
        return list(self.broadcasts.values())

    def _drop_expired_broadcasts(self) -> None:
        now = _now()
        for key, notice in list(self.broadcasts.items()):
            if notice.expires_at is not None and notice.expires_at <= now:
                del self.broadcasts[key]

    def set_files(self, meeting_id: str, epoch: int, files: list[MeetingFile]) -> None:
        """The meeting's files changed at the EMS: every open page gets the new list."""
        meeting = self.meetings.get(meeting_id)
        if meeting is None or meeting.epoch != epoch:
            return  # not (or no longer) hosted here at that epoch: the list is not ours
        meeting.files = list(files)
        self._fan_out(meeting, Files(files=meeting.files).model_dump_json())

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
        self._changed()
        you = meeting.people[conn.user]
        conn.send_text(meeting.welcome_json(you), bounded=False)
        self._send_tool_states(meeting, conn)
        for notice in self.current_broadcasts():  # messages to all users sent before
            conn.send(notice)
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
            joined = Joined(user=you.user, role=you.role).model_dump_json()
            self._roster_changed(meeting, joined, but=conn)
        return meeting

    def leave(self, meeting_id: str, conn: Connection) -> None:
        meeting = self.meetings.get(meeting_id)
        if meeting is not None:
            self._remove(meeting, conn)

    def _remove(self, meeting: HostedMeeting, conn: Connection) -> None:
        if conn in meeting.connections:
            self._changed()  # one connection fewer, whoever it was
        if not meeting.remove(conn):
            return  # not in it, or the user still has another page open
        self.post(
            ParticipantLeft(meeting_id=meeting.id, epoch=meeting.epoch, user=conn.user, at=_now())
        )
        self._roster_changed(meeting, Left(user=conn.user).model_dump_json())

    async def chat(self, meeting_id: str, conn: Connection, event_id: str, text: str) -> None:
        """Store the line off this server, then show it to everyone, then acknowledge it."""
        meeting = self.get(meeting_id)
        key = (conn.user, event_id)
        if key in meeting.in_flight:
            return  # a resend while the first is being stored: that one will answer
        limit = self.config.max_chat_length
        if len(text) > limit:
            self._deliver(
                meeting,
                conn,
                Error(message=f"a chat line is at most {limit} characters here", id=event_id),
            )
            return
        if event_id not in meeting.seen.get(conn.user, ()):  # a resend costs nothing
            per_minute = self.config.max_chat_lines_per_minute
            wait = meeting.rates.take(conn.person or conn.user, per_minute, time.monotonic())
            if wait:
                self._deliver(
                    meeting, conn, Error(message=too_fast_text(per_minute, wait), id=event_id)
                )
                return
        if not meeting.is_duplicate(conn.user, event_id):
            line = ChatLine(id=event_id, sender=conn.user, text=text, at=_now())
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
            self._fan_out(meeting, meeting.record(line))
            if len(meeting.history) == 1:
                self._changed()  # chat in use now: the heartbeat says so
        self._deliver(meeting, conn, Ack(id=event_id))

    async def tool_event(
        self, meeting_id: str, conn: Connection, event_id: str, event: ToolEvent
    ) -> None:
        """Check a tool event, store it off this server, apply it, show it, acknowledge it.

        Refused (a disabled tool, a role that may not, a closed poll, too fast): an `error`
        with the event's id, and nothing is stored."""
        meeting = self.get(meeting_id)
        key = (conn.user, event_id)
        if key in meeting.in_flight:
            return  # a resend while the first is being stored: that one will answer
        tool = TOOLS[event.tool]
        if not enabled(tool, meeting.tools):
            self._deliver(meeting, conn, Error(message=disabled_text(tool), id=event_id))
            return
        person = conn.person or conn.user
        if event_id not in meeting.seen.get(conn.user, ()):
            board = tool is whiteboard.TOOL  # strokes come faster than votes: a rate of their own
            per_minute = BOARD_EVENTS_PER_MINUTE if board else TOOL_EVENTS_PER_MINUTE
            rates = meeting.board_rates if board else meeting.tool_rates
            wait = rates.take(person, per_minute, time.monotonic())
            if wait:
                what = "whiteboard actions" if board else "meeting tool actions"
                text = too_fast_text(per_minute, wait, what)
                self._deliver(meeting, conn, Error(message=text, id=event_id))
                return
        # Waiting for its turn or for the journal, it answers for its resends (dropped).
        meeting.in_flight.add(key)
        try:
            check = CHECKS.get(tool.name)
            if check is not None and event_id not in meeting.seen.get(conn.user, ()):
                try:
                    event = await check(event, meeting.actor_of(conn))
                except Refused as exc:
                    self._deliver(meeting, conn, Error(message=str(exc), id=event_id))
                    return
            async with meeting.tool_lock:
                stored = await self._apply_tool_event(meeting, conn, tool, event, event_id)
        finally:
            meeting.in_flight.discard(key)
        if stored:
            self._deliver(meeting, conn, Ack(id=event_id))

    async def _apply_tool_event(
        self,
        meeting: HostedMeeting,
        conn: Connection,
        tool: Tool[Any],
        event: ToolEvent,
        event_id: str,
    ) -> bool:
        """Check, journal, apply and show one tool event (its meeting's turn held); whether
        it is stored (then the sender gets `ack`)."""
        if self.meetings.get(meeting.id) is not meeting:
            raise MeetingNotHere(meeting.id)
        if meeting.is_duplicate(conn.user, event_id):
            return True  # stored before (or just now, by a resend's first copy)
        state = meeting.tool_state(tool)
        actor = meeting.actor_of(conn)  # as of now: a grant may have come in meanwhile
        try:
            event = tool.prepare(state, event, actor, meeting.room())
            after = tool.apply(state, event, actor)
        except Refused as exc:
            meeting.forget_event(conn.user, event_id)
            self._deliver(meeting, conn, Error(message=str(exc), id=event_id))
            return False
        # The token's role: a replay raises it by the grants journaled before, as here.
        record = ToolRecord(event=event, person=actor.person, role=conn.role)
        entry = JournalEntry(
            event_id=event_id,
            sender=conn.user,
            kind=tool.name,
            body=record.model_dump(mode="json"),
            at=_now(),
        )
        if not await self.journal(meeting, entry):
            meeting.forget_event(conn.user, event_id)
            return False  # no ack: the client sends it again
        if self.meetings.get(meeting.id) is not meeting:
            return False  # closed or moved meanwhile: the journal has it for the next server
        if meeting.set_tool_state(tool, after):
            self._changed()  # a tool in use now: the heartbeat says so
        self._tool_changed(meeting, tool, tool.announce(event, actor), state)
        if isinstance(event, Remove):
            self._put_out(meeting, event.person)
        if isinstance(event, Grant | TakeBack):  # their polls' results, ... as their role sees
            for page in [c for c in meeting.connections if (c.person or c.user) == event.person]:
                self._send_tool_states(meeting, page, personal_only=True)
        return True

    def react(self, meeting_id: str, conn: Connection, emoji: str) -> None:
        """A reaction: counted and shown to everyone, not journaled (it is gone in seconds)."""
        meeting = self.get(meeting_id)
        person = conn.person or conn.user
        wait = meeting.tool_rates.take(person, TOOL_EVENTS_PER_MINUTE, time.monotonic())
        if wait:
            text = too_fast_text(TOOL_EVENTS_PER_MINUTE, wait, "reactions")
            self._deliver(meeting, conn, Error(message=text))
            return
        meeting.reactions[emoji] += 1
        reaction = Reaction(user=conn.user, emoji=emoji, counts=dict(meeting.reactions))
        self._fan_out(meeting, reaction.model_dump_json())

    def draw(self, meeting_id: str, conn: Connection, message: Draw | Pointer) -> None:
        """A whiteboard element while drawn, or the pointer: to the others at once, not
        journaled; dropped (with a reason) if the board is off or this person may not draw."""
        meeting = self.get(meeting_id)
        if not enabled(whiteboard.TOOL, meeting.tools):
            self._deliver(meeting, conn, Error(message=disabled_text(whiteboard.TOOL)))
            return
        board = meeting.tool_state(whiteboard.TOOL)
        if board.who == "moderators" and not meeting.actor_of(conn).presents:
            return  # the page knows (tool_state `who`); a late stroke is not worth an error
        person = conn.person or conn.user
        if meeting.draw_rates.take(person, DRAW_UPDATES_PER_MINUTE, time.monotonic()):
            return  # live updates are best effort: the finished element is what counts
        if isinstance(message, Draw):
            out = Drawing(
                user=conn.user, page=message.page, element=message.element, slide=message.slide
            )
        else:
            out = Drawing(
                user=conn.user, page=message.page, x=message.x, y=message.y, slide=message.slide
            )
        self._fan_out(
            meeting, out.model_dump_json(), [c for c in meeting.connections if c is not conn]
        )

    def _tool_state_text(
        self, meeting: HostedMeeting, tool: Tool[Any], viewer: Actor, announce: str = ""
    ) -> str:
        view = tool.view(meeting.tool_state(tool), viewer)
        return ToolState(tool=tool.name, state=view, announce=announce).model_dump_json()

    def _send_tool_states(
        self, meeting: HostedMeeting, conn: Connection, *, personal_only: bool = False
    ) -> None:
        """Each tool's state for a page that joins. Sent whatever its size, like `welcome`
        (a board of thousands of strokes is more than a page's backlog may hold); a view
        that is the same for everyone is serialised once per state, not once per page (a
        failover brings every page back at once)."""
        viewer = meeting.actor_of(conn)
        for tool in TOOLS.values():
            if not enabled(tool, meeting.tools) or (personal_only and not tool.personal):
                continue
            if tool.personal:
                conn.send_text(self._tool_state_text(meeting, tool, viewer), bounded=False)
                continue
            state = meeting.tool_state(tool)
            cached = meeting.shared_views.get(tool.name)
            if cached is None or cached[0] is not state:
                cached = (state, self._tool_state_text(meeting, tool, viewer))
                meeting.shared_views[tool.name] = cached
            conn.send_text(cached[1], bounded=False)

    def _tool_changed(
        self, meeting: HostedMeeting, tool: Tool[Any], announce: str, before: Any
    ) -> None:
        """Every page gets the tool's new view: built once per kind of viewer (once for all
        when the view is the same for everyone); or, for a large one, what changed."""
        if tool.delta is not None:
            change = tool.delta(before, meeting.tool_state(tool))
            wire = ToolDelta(tool=tool.name, delta=change, announce=announce).model_dump_json()
            self._fan_out(meeting, wire)
            return
        groups: dict[tuple[str, str], tuple[Actor, list[Connection]]] = {}
        for conn in meeting.connections:
            person = conn.person or conn.user
            key = (person, conn.role) if tool.personal else ("", "")
            if key not in groups:
                groups[key] = (meeting.actor_of(conn), [])
            groups[key][1].append(conn)
        for viewer, conns in groups.values():
            self._fan_out(meeting, self._tool_state_text(meeting, tool, viewer, announce), conns)

    def _put_out(self, meeting: HostedMeeting, person: str) -> None:
        """A moderator removed this person: each of their pages is told, then closed."""
        text = Error(message=moderation.REMOVED_TEXT).model_dump_json()
        for conn in [c for c in meeting.connections if (c.person or c.user) == person]:
            conn.send_text(text)
            conn.close(CLOSE_NOT_ADMITTED, "removed")
            self._remove(meeting, conn)

    def _deliver(self, meeting: HostedMeeting, conn: Connection, message: BaseModel) -> None:
        """Queue a message for one page (dropped, and off the roster, if too far behind)."""
        if not conn.send(message) and conn.behind:
            self._remove(meeting, conn)

    def _fan_out(
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
            self._remove(meeting, conn)

    def _roster_changed(
        self, meeting: HostedMeeting, change: str, but: Connection | None = None
    ) -> None:
        """Send a roster change (`joined`, `left`) to every page of the meeting but `but`.

        Pages that did not ask for changes get the deprecated whole `roster` instead, at
        most once a second per meeting, built and serialised once for all of them.
        """
        self._fan_out(
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
        self._fan_out(meeting, wire, [c for c in meeting.connections if not c.roster_changes])


def _replay(meeting: HostedMeeting, entry: JournalEntry) -> None:
    """Apply a journaled tool event to a meeting being rebuilt, as it was applied live."""
    tool = TOOLS.get(entry.kind)
    if tool is None:
        log.warning("meeting %s: skipped a journal event of kind %s", meeting.id, entry.kind)
        return
    try:
        record = record_of(entry.body)
        actor = meeting.actor(entry.sender, record.person, record.role)
        meeting.set_tool_state(tool, tool.apply(meeting.tool_state(tool), record.event, actor))
    except (Refused, ValidationError) as exc:  # it was applied once: it cannot be refused now
        log.warning("meeting %s: skipped journal event %s: %s", meeting.id, entry.event_id, exc)


def _now() -> datetime:
    return datetime.now(UTC)
