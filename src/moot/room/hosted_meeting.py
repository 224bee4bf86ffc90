"""One meeting as this room server hosts it: its pages, who is in it, its chat, its tools'
states, and what every page that joins is sent (built from parts serialised once).
`replay` rebuilds a tool's state from a journaled event when the meeting opens."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from moot.infra.tokens import Role
from moot.protocol.client import ChatLine, Welcome
from moot.protocol.control import JournalEntry, MeetingFile, MeetingStatus, Participant
from moot.protocol.tools import record_of
from moot.room.connection import Connection
from moot.room.ratelimit import RateLimits
from moot.room.tools import TOOLS
from moot.room.tools.base import Actor, Refused, Room, Tool
from moot.room.tools.moderation import state as moderation
from moot.room.tools.moderation.roles import actor_of

log = logging.getLogger("moot.room.host")

# How many client event ids a meeting remembers per sender to drop resends.
SEEN_IDS_PER_SENDER = 1000
# The deprecated whole-roster message goes to a client at most this often (seconds).
FULL_ROSTER_EVERY = 1.0

_participants: TypeAdapter[list[Participant]] = TypeAdapter(list[Participant])


@dataclass
class HostedMeeting:
    id: str
    name: str
    moderator: str
    epoch: int
    tools: list[str]
    recording: bool = False
    kind: str = "collaboration"  # or broadcast: who may send audio/video (core.media_rights)
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


# Where a meeting's events are made durable before they are acknowledged (the agent's).
Journal = Callable[[HostedMeeting, JournalEntry], Awaitable[bool]]


def replay(meeting: HostedMeeting, entry: JournalEntry) -> None:
    """Apply a journaled tool event to a meeting being rebuilt, as it was applied live."""
    tool = TOOLS.get(entry.kind)
    if tool is None:
        log.warning("meeting %s: skipped a journal event of kind %s", meeting.id, entry.kind)
        return
    try:
        record = record_of(entry.body)
        actor = meeting.actor(entry.sender, record.person, record.role)
        # The meeting is being built, no page has seen its state: it may change in place.
        step = tool.apply_in_place or tool.apply
        meeting.set_tool_state(tool, step(meeting.tool_state(tool), record.event, actor))
    except (Refused, ValidationError) as exc:  # it was applied once: it cannot be refused now
        log.warning("meeting %s: skipped journal event %s: %s", meeting.id, entry.event_id, exc)


def utc_now() -> datetime:
    return datetime.now(UTC)
