"""The meeting tools on a room server: each tool event checked against its tool's state
machine (room/tools), made durable in the journal, applied, shown to every page and
acknowledged; reactions and live drawing, which are shown but not journaled.

`MeetingTools` is the part of `MeetingHost` (host.py) that runs the tools: the host
gives it its meetings, its journal and its ways to reach the pages (`ToolDelivery`).
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

from pydantic import BaseModel

from moot.protocol.client import Ack, Draw, Drawing, Error, Pointer, Reaction, ToolDelta, ToolState
from moot.protocol.control import JournalEntry
from moot.protocol.tools import Grant, Remove, TakeBack, ToolEvent, ToolRecord
from moot.room.connection import Connection
from moot.room.hosted_meeting import HostedMeeting, Journal, MeetingNotHere, utc_now
from moot.room.media.hub import MediaHub
from moot.room.texts import too_fast_text
from moot.room.tools import CHECKS, TOOLS, disabled_text, enabled
from moot.room.tools.base import Actor, Refused, Tool
from moot.room.tools.moderation import state as moderation
from moot.room.tools.whiteboard import state as whiteboard

# Tool events and reactions one person may send a minute (a burst of a tenth of it at once).
TOOL_EVENTS_PER_MINUTE = 120
# Finished whiteboard elements (and erase, undo, ...) one person may send a minute.
BOARD_EVENTS_PER_MINUTE = 600
# Live whiteboard updates (strokes while drawn, the pointer) one person may send a minute:
# 30 a second; more are dropped without a word (the finished stroke is journaled anyway).
DRAW_UPDATES_PER_MINUTE = 1800
# WebSocket close code: a moderator removed this person, or the meeting is locked.
CLOSE_NOT_ADMITTED = 4403


class ToolDelivery(Protocol):
    """What the tools need of their host (MeetingHost, host.py): its meetings, its journal,
    its media, and its ways to reach the pages."""

    meetings: dict[str, HostedMeeting]
    journal: Journal
    media: MediaHub

    def get(self, meeting_id: str) -> HostedMeeting: ...

    def in_background(self, work: Coroutine[Any, Any, None]) -> None: ...

    def changed(self) -> None: ...

    def remove(self, meeting: HostedMeeting, conn: Connection) -> None: ...

    def deliver(self, meeting: HostedMeeting, conn: Connection, message: BaseModel) -> None: ...

    def fan_out(
        self, meeting: HostedMeeting, text: str, to: Iterable[Connection] | None = None
    ) -> None: ...


class MeetingTools:
    """The tools of a host's meetings (`MeetingHost.tools`)."""

    def __init__(self, host: ToolDelivery) -> None:
        self.host = host

    async def tool_event(
        self, meeting_id: str, conn: Connection, event_id: str, event: ToolEvent
    ) -> None:
        """Check a tool event, store it off this server, apply it, show it, acknowledge it.

        Refused (a disabled tool, a role that may not, a closed poll, too fast): an `error`
        with the event's id, and nothing is stored."""
        meeting = self.host.get(meeting_id)
        key = (conn.user, event_id)
        if key in meeting.in_flight:
            return  # a resend while the first is being stored: that one will answer
        tool = TOOLS[event.tool]
        if not enabled(tool, meeting.tools):
            self.host.deliver(meeting, conn, Error(message=disabled_text(tool), id=event_id))
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
                self.host.deliver(meeting, conn, Error(message=text, id=event_id))
                return
        # Waiting for its turn or for the journal, it answers for its resends (dropped).
        meeting.in_flight.add(key)
        try:
            check = CHECKS.get(tool.name)
            if check is not None and event_id not in meeting.seen.get(conn.user, ()):
                try:
                    event = await check(event, meeting.actor_of(conn))
                except Refused as exc:
                    self.host.deliver(meeting, conn, Error(message=str(exc), id=event_id))
                    return
            async with meeting.tool_lock:
                stored = await self._apply_tool_event(meeting, conn, tool, event, event_id)
        finally:
            meeting.in_flight.discard(key)
        if stored:
            self.host.deliver(meeting, conn, Ack(id=event_id))

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
        if self.host.meetings.get(meeting.id) is not meeting:
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
            self.host.deliver(meeting, conn, Error(message=str(exc), id=event_id))
            return False
        # The token's role: a replay raises it by the grants journaled before, as here.
        record = ToolRecord(event=event, person=actor.person, role=conn.role)
        entry = JournalEntry(
            event_id=event_id,
            sender=conn.user,
            kind=tool.name,
            body=record.model_dump(mode="json"),
            at=utc_now(),
        )
        if not await self.host.journal(meeting, entry):
            meeting.forget_event(conn.user, event_id)
            return False  # no ack: the client sends it again
        if self.host.meetings.get(meeting.id) is not meeting:
            return False  # closed or moved meanwhile: the journal has it for the next server
        if meeting.set_tool_state(tool, after):
            self.host.changed()  # a tool in use now: the heartbeat says so
        if tool is moderation.TOOL and after.muted != state.muted:
            # The SFU stops forwarding their audio; not awaited under the meeting's tool lock.
            self.host.in_background(self.host.media.mutes_changed(meeting))
        self._tool_changed(meeting, tool, tool.announce(event, actor), state)
        if isinstance(event, Remove):
            self._put_out(meeting, event.person)
        if isinstance(event, Grant | TakeBack):  # their polls' results, ... as their role sees
            for page in [c for c in meeting.connections if (c.person or c.user) == event.person]:
                self.send_states(meeting, page, personal_only=True)
                await self.host.media.role_changed(meeting, page)  # may share a screen, or no more
        return True

    def react(self, meeting_id: str, conn: Connection, emoji: str) -> None:
        """A reaction: counted and shown to everyone, not journaled (it is gone in seconds)."""
        meeting = self.host.get(meeting_id)
        person = conn.person or conn.user
        wait = meeting.tool_rates.take(person, TOOL_EVENTS_PER_MINUTE, time.monotonic())
        if wait:
            text = too_fast_text(TOOL_EVENTS_PER_MINUTE, wait, "reactions")
            self.host.deliver(meeting, conn, Error(message=text))
            return
        meeting.reactions[emoji] += 1
        reaction = Reaction(user=conn.user, emoji=emoji, counts=dict(meeting.reactions))
        self.host.fan_out(meeting, reaction.model_dump_json())

    def draw(self, meeting_id: str, conn: Connection, message: Draw | Pointer) -> None:
        """A whiteboard element while drawn, or the pointer: to the others at once, not
        journaled; dropped (with a reason) if the board is off or this person may not draw."""
        meeting = self.host.get(meeting_id)
        if not enabled(whiteboard.TOOL, meeting.tools):
            self.host.deliver(meeting, conn, Error(message=disabled_text(whiteboard.TOOL)))
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
        self.host.fan_out(
            meeting, out.model_dump_json(), [c for c in meeting.connections if c is not conn]
        )

    def _tool_state_text(
        self, meeting: HostedMeeting, tool: Tool[Any], viewer: Actor, announce: str = ""
    ) -> str:
        view = tool.view(meeting.tool_state(tool), viewer)
        return ToolState(tool=tool.name, state=view, announce=announce).model_dump_json()

    def send_states(
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
            self.host.fan_out(meeting, wire)
            return
        groups: dict[tuple[str, str], tuple[Actor, list[Connection]]] = {}
        for conn in meeting.connections:
            person = conn.person or conn.user
            key = (person, conn.role) if tool.personal else ("", "")
            if key not in groups:
                groups[key] = (meeting.actor_of(conn), [])
            groups[key][1].append(conn)
        for viewer, conns in groups.values():
            self.host.fan_out(
                meeting, self._tool_state_text(meeting, tool, viewer, announce), conns
            )

    def _put_out(self, meeting: HostedMeeting, person: str) -> None:
        """A moderator removed this person: each of their pages is told, then closed."""
        text = Error(message=moderation.REMOVED_TEXT).model_dump_json()
        for conn in [c for c in meeting.connections if (c.person or c.user) == person]:
            conn.send_text(text)
            conn.close(CLOSE_NOT_ADMITTED, "removed")
            self.host.remove(meeting, conn)
